import React, { useState } from 'react';

import { parsePaths } from '../protocol';
import { IExportState } from '../tokens';
import { Section } from './Section';

export interface IExportProps {
  state: IExportState;
  disabled: boolean;
  onExport: (modelPaths: string[], outDir: string) => void;
  /** The file browser's selection as the kernel sees it, or null. */
  selectedModelPath: () => string | null;
  /** Where a written file is for the document manager, or null if it cannot be opened. */
  openablePath: (file: string, cwd: string | null) => string | null;
  openFile: (serverPath: string) => void;
}

/** Write the provenance record of a trained model; shows the files written. */
export function Export(props: IExportProps): JSX.Element {
  const [models, setModels] = useState(() => props.selectedModelPath() ?? '');
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
        <button
          type="button"
          className="jp-mod-styled mlsecops-Export-selection"
          title="Put the file selected in the file browser in the field above"
          onClick={() => {
            const selected = props.selectedModelPath();
            if (selected) {
              setModels(selected);
            }
          }}
        >
          Use file browser selection
        </button>
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
            <Verification state={props.state} />
            <p>Written:</p>
            <ul className="mlsecops-List">
              {props.state.paths.map(path => {
                const target = props.openablePath(path, props.state.cwd);
                return (
                  <li key={path} className="mlsecops-Mono" data-path={path}>
                    {target ? (
                      <a
                        href="#"
                        title={`Open ${target}`}
                        onClick={event => {
                          event.preventDefault();
                          props.openFile(target);
                        }}
                      >
                        {path}
                      </a>
                    ) : (
                      path
                    )}
                  </li>
                );
              })}
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

/** What the kernel's check of the written envelope said. */
function Verification(props: { state: IExportState }): JSX.Element | null {
  const { verified, verification } = props.state;
  if (verified === null && verification.length === 0) {
    return null; // an older kernel that does not verify
  }
  const status = verified === true ? 'verified' : verified === false ? 'failed' : 'unchecked';
  const text =
    verified === true
      ? 'Verified: signature, statement and digests check out'
      : verified === false
        ? 'Verification failed'
        : 'Not verified';
  return (
    <div className="mlsecops-Verification" data-kind="verification" data-status={status}>
      <p
        className={verified === true ? 'mlsecops-Ok' : 'mlsecops-Warn'}
        role={verified === false ? 'alert' : undefined}
      >
        {text}
      </p>
      {verification.length > 0 ? (
        <details open={verified === false}>
          <summary>Checks</summary>
          <ul className="mlsecops-List">
            {verification.map((line, index) => (
              <li key={index} className="mlsecops-Mono">
                {line}
              </li>
            ))}
          </ul>
        </details>
      ) : null}
    </div>
  );
}
