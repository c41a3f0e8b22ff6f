import React from 'react';

import { IPiiFrameRow } from '../model';
import { Section } from './Section';

export function PersonalData({ frames }: { frames: IPiiFrameRow[] }): JSX.Element {
  return (
    <Section
      id="pii"
      title="Personal data in frames"
      count={frames.length}
      isEmpty={frames.length === 0}
      empty="No frame with personal data yet. After each cell, new or changed DataFrames are scanned; details of one: %mlsecops pii VAR."
    >
      <ul className="mlsecops-List">
        {frames.map(frame => (
          <li
            key={frame.key}
            className={frame.blocked ? 'mlsecops-Item mlsecops-Item-block' : 'mlsecops-Item'}
            data-kind="pii-frame"
          >
            <div className="mlsecops-Item-title">
              <code>{frame.variable}</code>{' '}
              <span className="mlsecops-Dim">
                {frame.library} · {frame.shape}
                {frame.cell !== null ? ` · cell ${frame.cell}` : ''}
              </span>
            </div>
            <table className="mlsecops-Table">
              <thead>
                <tr>
                  <th scope="col">column</th>
                  <th scope="col">entities</th>
                  <th scope="col">rows</th>
                </tr>
              </thead>
              <tbody>
                {frame.columns.map(column => (
                  <tr key={column.column} data-column={column.column}>
                    <td title={column.examples.join(', ')}>
                      {column.column}
                      {column.action === 'block' ? (
                        <span className="mlsecops-Badge mlsecops-Badge-block">blocked</span>
                      ) : null}
                    </td>
                    <td>{column.entities.join(', ')}</td>
                    <td>{Math.round(column.share * 100)}%</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </li>
        ))}
      </ul>
    </Section>
  );
}
