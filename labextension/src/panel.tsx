/**
 * The sidebar widget: a React view of the model's active kernel.
 */
import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import React from 'react';

import { Datasets } from './components/Datasets';
import { Export } from './components/Export';
import { Header } from './components/Header';
import { Off } from './components/Off';
import { PersonalData } from './components/PersonalData';
import { Pickles } from './components/Pickles';
import { shieldIcon } from './icon';
import {
  GuardrailsModel,
  allowedGlobals,
  datasetRows,
  pickleRows,
  piiFrames,
  policyReviews,
  reviewsWithoutFinding
} from './model';
import { IKernelState } from './tokens';

export interface IPanelActions {
  /** Run `%load_ext mlsecops_jupyter` in the active kernel. */
  loadExtension(): void;
  requestExport(modelPaths: string[], outDir: string): void;
  /** The file browser's selection, relative to the active notebook's kernel, or null. */
  selectedModelPath(): string | null;
  /** A file the kernel wrote, as a path the document manager opens, or null. */
  openablePath(file: string, cwd: string | null): string | null;
  openFile(serverPath: string): void;
}

export class GuardrailsPanel extends ReactWidget {
  constructor(
    private readonly _model: GuardrailsModel,
    private readonly _actions: IPanelActions
  ) {
    super();
    this.id = 'mlsecops-guardrails';
    this.addClass('mlsecops-Panel');
    this.title.icon = shieldIcon;
    this.title.caption = 'mlsecops guardrails';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'mlsecops guardrails');
    this._model.activeChanged.connect(() => this.update(), this);
  }

  render(): JSX.Element {
    return (
      // Another kernel's events (a notebook in the background) change nothing shown here:
      // every section is derived again from the records on each render.
      <UseSignal
        signal={this._model.changed}
        shouldUpdate={(_, kernelId) => kernelId === this._model.activeKernelId}
      >
        {() => <GuardrailsView state={this._model.active} actions={this._actions} />}
      </UseSignal>
    );
  }
}

function GuardrailsView(props: {
  state: IKernelState | null;
  actions: IPanelActions;
}): JSX.Element {
  const { state, actions } = props;
  const body =
    state === null || (state.status !== 'on' && state.identity === null) ? (
      <Off
        hasKernel={state !== null}
        connecting={state?.status === 'connecting' || state?.status === 'unknown'}
        reason={state?.reason ?? null}
        onLoad={() => actions.loadExtension()}
      />
    ) : (
      <>
        <Header state={state} />
        {state.status !== 'on' ? (
          <Off
            hasKernel={true}
            connecting={state.status === 'connecting'}
            reason={state.reason}
            onLoad={() => actions.loadExtension()}
          />
        ) : null}
        <Datasets rows={datasetRows(state.records)} />
        <PersonalDataSection records={state.records} policy={state.policyReviews} />
        <PicklesSection records={state.records} />
        <Export
          state={state.export}
          disabled={state.status !== 'on'}
          onExport={(paths, outDir) => actions.requestExport(paths, outDir)}
          selectedModelPath={() => actions.selectedModelPath()}
          openablePath={(file, cwd) => actions.openablePath(file, cwd)}
          openFile={path => actions.openFile(path)}
        />
      </>
    );
  return (
    <div className="mlsecops-Body">
      <h2 className="mlsecops-Title">
        <shieldIcon.react tag="span" className="mlsecops-Title-icon" />
        Guardrails
      </h2>
      {body}
    </div>
  );
}

function PersonalDataSection(props: {
  records: IKernelState['records'];
  policy: IKernelState['policyReviews'];
}): JSX.Element {
  const fromPolicy = policyReviews(props.policy);
  const frames = piiFrames(props.records, fromPolicy);
  return (
    <PersonalData
      frames={frames}
      otherReviews={reviewsWithoutFinding(props.records, frames, fromPolicy)}
    />
  );
}

function PicklesSection(props: { records: IKernelState['records'] }): JSX.Element {
  const allowed = allowedGlobals(props.records);
  return <Pickles rows={pickleRows(props.records, allowed)} allowed={allowed} />;
}
