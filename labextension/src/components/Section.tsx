import React from 'react';

export interface ISectionProps {
  id: string;
  title: string;
  count?: number;
  /** Shown when there is nothing to list: say what to do to see something. */
  empty: string;
  isEmpty: boolean;
  children?: React.ReactNode;
}

/** A titled section of the panel; its heading names it for screen readers. */
export function Section(props: ISectionProps): JSX.Element {
  const headingId = `mlsecops-${props.id}-heading`;
  return (
    <section
      className="mlsecops-Section"
      aria-labelledby={headingId}
      data-section={props.id}
    >
      <h3 id={headingId} className="mlsecops-Section-title">
        {props.title}
        {props.count !== undefined && props.count > 0 ? (
          <span className="mlsecops-Count" aria-label={`${props.count} items`}>
            {props.count}
          </span>
        ) : null}
      </h3>
      {props.isEmpty ? (
        <p className="mlsecops-Empty">{props.empty}</p>
      ) : (
        props.children
      )}
    </section>
  );
}

/** A titled list under a section's main one (what a person reviewed or allowed); none if empty. */
export function SubList(props: { title: string; children: JSX.Element[] }): JSX.Element | null {
  if (props.children.length === 0) {
    return null;
  }
  return (
    <>
      <p className="mlsecops-Dim">{props.title}</p>
      <ul className="mlsecops-List">{props.children}</ul>
    </>
  );
}
