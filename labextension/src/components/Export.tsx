import React, { useState } from 'react';

import { parsePaths } from '../protocol';
import { IExportState } from '../tokens';
import { Section } from './Section';

export interface IExportProps {
  state: IExportState;
  disabled: boolean;
  onExport: (modelPaths: string[], outDir: string) => void;
}

/** Write the provenance record of a trained model; shows the files written. */
export function Export(props: IExportProps): JSX.Element {
  const [models, setModels] = useState('');
  const [outDir, setOutDir] = useState('provenance');
  const pending = props.state.status === 'pending';
  const paths = parsePaths(models);
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    if (!pending && !props.disabled && outDir.trim()) {
      props.onExport(paths, outDir.trim());
    }
  };
  return (
    <Section
      id="export"
      title="Provenance export"
      isEmpty={false}
      empty=""
    >
      <form className="mlsecops-Export" onSubmit={submit}>
        <label htmlFor="mlsecops-export-models">
          Model files (relative to the notebook's kernel, comma separated)
        </label>
        <input
          id="mlsecops-export-models"
          className="jp-mod-styled"
          type="text"
          value={models}
          placeholder="outputs/churn_model.joblib"
          onChange={e => setModels(e.target.value)}
        />
        <label htmlFor="mlsecops-export-dir">Write to directory</label>
        <input
          id="mlsecops-export-dir"
          className="jp-mod-styled"
          type="text"
          value={outDir}
          onChange={e => setOutDir(e.target.value)}
        />
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept"
          disabled={pending || props.disabled || !outDir.trim()}
        >
          {pending ? 'Exporting…' : 'Export provenance'}
        </button>
      </form>
      <div aria-live="polite">
        {props.state.status === 'done' ? (
          <div data-kind="export-paths">
            <p>Written:</p>
            <ul className="mlsecops-List">
              {props.state.paths.map(path => (
                <li key={path} className="mlsecops-Mono">
                  {path}
                </li>
              ))}
            </ul>
          </div>
        ) : null}
        {props.state.status === 'failed' ? (
          <p className="mlsecops-Error" role="alert">
            {props.state.message}
          </p>
        ) : null}
      </div>
    </Section>
  );
}
