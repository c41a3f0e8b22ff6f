import React from 'react';

import { IPickleRow } from '../model';
import { Section } from './Section';

const LABELS: { [status: string]: string } = {
  blocked: 'blocked',
  unsafe: 'unsafe file',
  warned: 'loaded with warning',
  scanned: 'scanned',
  safe: 'scanned: safe'
};

export function Pickles({ rows }: { rows: IPickleRow[] }): JSX.Element {
  return (
    <Section
      id="pickles"
      title="Pickle and model loads"
      count={rows.length}
      isEmpty={rows.length === 0}
      empty="No pickle or model file loaded or scanned yet. Every unpickling is checked before it runs; scan files first with %mlsecops scan PATH."
    >
      <ul className="mlsecops-List">
        {rows.map(row => (
          <li
            key={row.key}
            className={
              row.status === 'blocked' ? 'mlsecops-Item mlsecops-Item-block' : 'mlsecops-Item'
            }
            data-kind="pickle"
            data-status={row.status}
          >
            <div className="mlsecops-Item-title" title={row.path}>
              <span className={`mlsecops-Badge mlsecops-Badge-${row.status}`}>
                {LABELS[row.status]}
              </span>{' '}
              {row.path.split('/').slice(-2).join('/')}
            </div>
            {row.globals.length ? (
              <div className="mlsecops-Mono">{row.globals.join(', ')}</div>
            ) : null}
            <div className="mlsecops-Item-meta">
              {row.reason}
              {row.loader ? ` · ${row.loader}` : ''}
              {row.cell !== null ? ` · cell ${row.cell}` : ''}
            </div>
          </li>
        ))}
      </ul>
    </Section>
  );
}
