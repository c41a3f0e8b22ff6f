import React from 'react';

import { IKernelState } from '../tokens';

export interface IHeaderProps {
  state: IKernelState;
}

/** Guardrails on/off, who is running, the policy in force and the audit log's health. */
export function Header({ state }: IHeaderProps): JSX.Element {
  const on = state.status === 'on' && state.guardrails?.on === true;
  const auditOk = state.audit?.status === 'ok';
  const policyErrors = state.policy?.errors.length ?? 0;
  return (
    <header className="mlsecops-Header" data-section="header">
      <p
        className={`mlsecops-Status ${on ? 'mlsecops-Status-on' : 'mlsecops-Status-off'}`}
        role="status"
      >
        {on ? 'Guardrails on' : 'Guardrails off'}
        {on && state.guardrails?.names.length ? (
          <span className="mlsecops-Dim"> · {state.guardrails.names.join(', ')}</span>
        ) : null}
      </p>
      <dl className="mlsecops-Facts">
        <dt>Who</dt>
        <dd>{state.identity?.display_name ?? '—'}</dd>
        <dt>Notebook</dt>
        <dd>{state.identity?.notebook ?? '—'}</dd>
        <dt>Policy</dt>
        <dd title={state.policy?.path ?? undefined}>
          {state.policy?.source ?? 'built-in defaults'}
          {policyErrors > 0 ? (
            <span className="mlsecops-Warn">
              {' '}
              ({policyErrors} error{policyErrors === 1 ? '' : 's'}: run %mlsecops policy)
            </span>
          ) : null}
        </dd>
        <dt>Audit log</dt>
        <dd title={state.audit?.path}>
          <span className={auditOk ? 'mlsecops-Ok' : 'mlsecops-Warn'}>
            {state.audit?.status ?? '—'}
          </span>
        </dd>
      </dl>
      {state.recordsLeftOut > 0 ? (
        <p className="mlsecops-Dim">
          {state.recordsLeftOut} older events are not shown here (see %mlsecops log).
        </p>
      ) : null}
      {state.lastError ? (
        <p className="mlsecops-Error" role="alert">
          {state.lastError}
        </p>
      ) : null}
    </header>
  );
}
