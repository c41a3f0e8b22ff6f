import React from 'react';

import { IPickleAllowance, IPickleGlobal, IPickleRow } from '../model';
import { lastTwoSegments } from './Datasets';
import { Section, SubList } from './Section';

const LABELS: { [status: string]: string } = {
  blocked: 'blocked',
  unsafe: 'unsafe file',
  warned: 'loaded with warning',
  scanned: 'scanned',
  safe: 'scanned: safe'
};

export interface IPicklesProps {
  rows: IPickleRow[];
  /** Globals a person allowed, the latest allowance of each. */
  allowed: IPickleAllowance[];
}

export function Pickles({ rows, allowed }: IPicklesProps): JSX.Element {
  return (
    <Section
      id="pickles"
      title="Pickle and model loads"
      count={rows.length}
      isEmpty={rows.length === 0 && allowed.length === 0}
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
              {lastTwoSegments(row.path)}
            </div>
            {row.globals.length ? (
              <ul className="mlsecops-Globals">
                {row.globals.map(global => (
                  <Global key={global.name} global={global} />
                ))}
              </ul>
            ) : null}
            <div className="mlsecops-Item-meta">
              {row.reason}
              {row.loader ? ` · ${row.loader}` : ''}
              {row.cell !== null ? ` · cell ${row.cell}` : ''}
            </div>
          </li>
        ))}
      </ul>
      <SubList title="Allowed globals">
        {allowed.map(allowance => (
          <li
            key={allowance.key}
            className={
              allowance.dangerous
                ? 'mlsecops-Item mlsecops-Item-dangerous'
                : 'mlsecops-Item mlsecops-Item-reviewed'
            }
            data-kind="pickle-allowed"
            data-global={allowance.qualified}
            data-scope={allowance.scope}
          >
            <div className="mlsecops-Item-title">
              <code>{allowance.qualified}</code>
              <AllowedBadges allowance={allowance} />
            </div>
            <div className="mlsecops-Item-meta">
              {allowance.reason}
              {allowance.policyPath ? ` · ${allowance.policyPath}` : ''}
              {allowance.cell !== null ? ` · cell ${allowance.cell}` : ''}
            </div>
          </li>
        ))}
      </SubList>
    </Section>
  );
}

function Global({ global }: { global: IPickleGlobal }): JSX.Element {
  return (
    <li
      className="mlsecops-Mono"
      data-global={global.name}
      data-allowed={global.allowed ? global.allowed.scope : undefined}
      title={global.allowed ? `allowed: ${global.allowed.reason}` : undefined}
    >
      {global.name}
      {global.allowed ? <AllowedBadges allowance={global.allowed} /> : null}
    </li>
  );
}

/** "allowed (session|policy)"; a dangerous global's override stands out. */
function AllowedBadges({ allowance }: { allowance: IPickleAllowance }): JSX.Element {
  return (
    <>
      <span className="mlsecops-Badge mlsecops-Badge-allowed">
        allowed ({allowance.scope})
      </span>
      {allowance.dangerous ? (
        <span
          className="mlsecops-Badge mlsecops-Badge-dangerous"
          title="A known-dangerous global, allowed by an explicit override: it can run code"
        >
          dangerous override
        </span>
      ) : null}
    </>
  );
}
