import React from 'react';

import { IPiiColumn, IPiiFrameRow, IPiiReview, verdictLabel } from '../model';
import { Section, SubList } from './Section';

export interface IPersonalDataProps {
  frames: IPiiFrameRow[];
  /** Reviews that cover no column shown above (e.g. a column name, project-wide). */
  otherReviews: IPiiReview[];
}

export function PersonalData({ frames, otherReviews }: IPersonalDataProps): JSX.Element {
  return (
    <Section
      id="pii"
      title="Personal data in frames"
      count={frames.length}
      isEmpty={frames.length === 0 && otherReviews.length === 0}
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
                {frame.columns.map(column =>
                  column.review ? (
                    <ReviewedColumn key={column.column} column={column} review={column.review} />
                  ) : (
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
                  )
                )}
              </tbody>
            </table>
          </li>
        ))}
      </ul>
      <SubList title="Reviewed columns">
        {otherReviews.map(review => (
          <li
            key={review.key}
            className="mlsecops-Item mlsecops-Item-reviewed"
            data-kind="pii-review"
            data-column={review.column}
            data-verdict={review.verdict}
            data-source={review.source}
          >
            <div className="mlsecops-Item-title">
              <code>
                {review.variable !== null ? `${review.variable}.` : ''}
                {review.column}
              </code>
              <VerdictBadge review={review} />
            </div>
            <ReviewReason review={review} />
          </li>
        ))}
      </SubList>
    </Section>
  );
}

/** A reviewed finding: the verdict and the reviewer's reason instead of the plain finding. */
function ReviewedColumn(props: { column: IPiiColumn; review: IPiiReview }): JSX.Element {
  const { column, review } = props;
  return (
    <tr
      data-column={column.column}
      data-verdict={review.verdict}
      data-source={review.source}
      className="mlsecops-Row-reviewed"
    >
      <td title={`was: ${column.entities.join(', ')}`}>
        {column.column}
        <VerdictBadge review={review} />
      </td>
      <td colSpan={2}>
        <ReviewReason review={review} />
      </td>
    </tr>
  );
}

function VerdictBadge({ review }: { review: IPiiReview }): JSX.Element {
  return (
    <span className={`mlsecops-Badge mlsecops-Badge-reviewed mlsecops-Badge-${review.verdict}`}>
      {verdictLabel(review.verdict)}
    </span>
  );
}

function ReviewReason({ review }: { review: IPiiReview }): JSX.Element {
  const where = review.scope === 'project' ? 'every frame' : null;
  return (
    <span className="mlsecops-Review" title={review.policyPath ?? undefined}>
      {review.reason}
      <span className="mlsecops-Dim">
        {where ? ` · ${where}` : ''}
        {keptIn(review)}
      </span>
    </span>
  );
}

/** Where the verdict is kept: a review from the policy file was made before this session. */
function keptIn(review: IPiiReview): string {
  if (review.source === 'policy') {
    return ` · from the policy file ${fileName(review.policyPath ?? '')}`.trimEnd();
  }
  return review.policyPath ? ' · in the policy file' : ' · this session';
}

function fileName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
