import React from 'react';

import { IDatasetRow } from '../model';
import { Section } from './Section';

export function Datasets({ rows }: { rows: IDatasetRow[] }): JSX.Element {
  return (
    <Section
      id="datasets"
      title="Datasets accessed"
      count={rows.length}
      isEmpty={rows.length === 0}
      empty="No dataset read or written yet. Files, URLs and SQL queries the kernel reads (pd.read_csv, open, np.load, ...) appear here with their digests."
    >
      <ul className="mlsecops-List">
        {rows.map(row => (
          <li
            key={row.key}
            className={row.blocked ? 'mlsecops-Item mlsecops-Item-block' : 'mlsecops-Item'}
            data-kind="dataset"
          >
            <div className="mlsecops-Item-title" title={row.uri}>
              {shortUri(row.uri)}
            </div>
            <div className="mlsecops-Item-meta">
              {row.blocked ? <strong>blocked {row.mode}</strong> : row.mode} · {row.reader}
              {row.shape ? ` · ${row.shape}` : ''}
              {row.cell !== null ? ` · cell ${row.cell}` : ''}
            </div>
            {row.digest ? <div className="mlsecops-Mono">{row.digest}</div> : null}
            {row.detail ? <div className="mlsecops-Item-meta">{row.detail}</div> : null}
          </li>
        ))}
      </ul>
    </Section>
  );
}

/** The last two path segments of a file URI; other URIs unchanged. */
export function shortUri(uri: string): string {
  if (!uri.startsWith('file://')) {
    return uri;
  }
  return lastTwoSegments(decodeURIComponent(uri.slice('file://'.length)));
}

/** `dir/file` of a path: enough to tell files apart in a narrow panel. */
export function lastTwoSegments(path: string): string {
  return path.split('/').slice(-2).join('/');
}
