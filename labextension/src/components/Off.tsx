import React from 'react';

export interface IOffProps {
  hasKernel: boolean;
  connecting: boolean;
  reason: string | null;
  onLoad: () => void;
}

/** What the panel shows when there is no kernel or the guardrails are not on in it. */
export function Off(props: IOffProps): JSX.Element {
  if (!props.hasKernel) {
    return (
      <div className="mlsecops-Off" data-state="no-kernel">
        <p className="mlsecops-Status mlsecops-Status-off">No notebook kernel</p>
        <p className="mlsecops-Empty">
          Open a notebook: this panel shows what the guardrails see in its kernel.
        </p>
      </div>
    );
  }
  if (props.connecting) {
    return (
      <div className="mlsecops-Off" data-state="connecting">
        <p className="mlsecops-Empty">Asking the kernel…</p>
      </div>
    );
  }
  return (
    <div className="mlsecops-Off" data-state="off">
      <p className="mlsecops-Status mlsecops-Status-off" role="status">
        Guardrails off
      </p>
      <p className="mlsecops-Empty">
        {props.reason ? `${props.reason}. ` : ''}
        The mlsecops extension is not loaded in this notebook's kernel (a kernel restart
        switches it off). Turn it on here, or run <code>%load_ext mlsecops_jupyter</code> in
        a cell.
      </p>
      <button type="button" className="jp-mod-styled jp-mod-accept" onClick={props.onLoad}>
        Turn guardrails on
      </button>
    </div>
  );
}
