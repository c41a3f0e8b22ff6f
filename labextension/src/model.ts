/**
 * The panel's state: one entry per kernel, fed by the kernel's comm messages.
 * No JupyterLab imports here, so that it is unit-tested without a browser.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { parseKernelMessage } from './protocol';
import {
  IExportState,
  IGuardrailsModel,
  IKernelState,
  IRecord,
  KernelMessage
} from './tokens';

/** Records kept per kernel; older ones stay in the audit log. */
export const MAX_RECORDS = 5000;

const IDLE_EXPORT: IExportState = {
  status: 'idle',
  requestId: null,
  paths: [],
  cwd: null,
  verified: null,
  verification: [],
  message: null
};

function emptyState(kernelId: string): IKernelState {
  return {
    kernelId,
    status: 'unknown',
    reason: null,
    session: null,
    identity: null,
    policy: null,
    audit: null,
    guardrails: null,
    records: [],
    recordsLeftOut: 0,
    export: IDLE_EXPORT,
    lastError: null
  };
}

export class GuardrailsModel implements IGuardrailsModel {
  get activeKernelId(): string | null {
    return this._activeKernelId;
  }

  get active(): IKernelState | null {
    return this._activeKernelId ? this.state(this._activeKernelId) : null;
  }

  get changed(): ISignal<this, string> {
    return this._changed;
  }

  get activeChanged(): ISignal<this, string | null> {
    return this._activeChanged;
  }

  state(kernelId: string): IKernelState | null {
    return this._kernels.get(kernelId) ?? null;
  }

  /** Follow another kernel (the active notebook's), or none. */
  setActive(kernelId: string | null): void {
    if (kernelId === this._activeKernelId) {
      return;
    }
    this._activeKernelId = kernelId;
    if (kernelId && !this._kernels.has(kernelId)) {
      this._kernels.set(kernelId, emptyState(kernelId));
    }
    this._activeChanged.emit(kernelId);
  }

  connecting(kernelId: string): void {
    this._update(kernelId, state => {
      // Keep what was shown while asking again: no flicker after each cell.
      return state.status === 'on'
        ? state
        : { ...state, status: 'connecting', reason: null };
    });
  }

  /** The extension is not (or no longer) loaded in this kernel. */
  off(kernelId: string, reason: string | null = null): void {
    this._update(kernelId, state => ({
      ...state,
      status: 'off',
      reason,
      guardrails: state.guardrails ? { ...state.guardrails, on: false } : null,
      export:
        state.export.status === 'pending'
          ? {
              ...state.export,
              status: 'failed',
              message: 'the guardrails were switched off before the export finished'
            }
          : state.export
    }));
  }

  /** A comm message from the kernel. Returns false when it was not understood. */
  handleMessage(kernelId: string, data: unknown): boolean {
    const parsed = parseKernelMessage(data);
    if (!parsed.ok) {
      this._update(kernelId, state => ({ ...state, lastError: parsed.problem }));
      return false;
    }
    this._update(kernelId, state => apply(state, parsed.message));
    return true;
  }

  exportRequested(kernelId: string, requestId: string): void {
    this._update(kernelId, state => ({
      ...state,
      export: { ...IDLE_EXPORT, status: 'pending', requestId }
    }));
  }

  exportFailed(kernelId: string, message: string): void {
    this._update(kernelId, state => ({
      ...state,
      export: { ...state.export, status: 'failed', message }
    }));
  }

  /** Drop a kernel that was shut down. */
  forget(kernelId: string): void {
    if (this._kernels.delete(kernelId)) {
      this._changed.emit(kernelId);
    }
  }

  private _update(
    kernelId: string,
    change: (state: IKernelState) => IKernelState
  ): void {
    const before = this._kernels.get(kernelId) ?? emptyState(kernelId);
    const after = change(before);
    if (after !== before || !this._kernels.has(kernelId)) {
      this._kernels.set(kernelId, after);
      this._changed.emit(kernelId);
    }
  }

  private _activeKernelId: string | null = null;
  private _kernels = new Map<string, IKernelState>();
  private _changed = new Signal<this, string>(this);
  private _activeChanged = new Signal<this, string | null>(this);
}

function apply(state: IKernelState, message: KernelMessage): IKernelState {
  switch (message.type) {
    case 'snapshot': {
      const records = message.records.slice(-MAX_RECORDS);
      return {
        ...state,
        status: message.guardrails.on ? 'on' : 'off',
        reason: null,
        session: message.session,
        identity: message.identity,
        policy: message.policy,
        audit: message.audit,
        guardrails: message.guardrails,
        records,
        recordsLeftOut:
          message.records_left_out + (message.records.length - records.length),
        lastError: null
      };
    }
    case 'event': {
      const record = message.record;
      if (record.session !== state.session && state.session !== null) {
        // A record of another session (the extension was reloaded): the next
        // snapshot brings it with the rest; do not mix sessions.
        return state;
      }
      if (state.records.some(r => r.id === record.id)) {
        return state;
      }
      let records = [...state.records, record];
      let leftOut = state.recordsLeftOut;
      if (records.length > MAX_RECORDS) {
        leftOut += records.length - MAX_RECORDS;
        records = records.slice(-MAX_RECORDS);
      }
      let guardrails = state.guardrails;
      if (record.kind === 'session.ended' && guardrails) {
        guardrails = { ...guardrails, on: false };
      }
      return { ...state, records, recordsLeftOut: leftOut, guardrails };
    }
    case 'export_response':
      if (!isAnswerTo(state, message.request_id)) {
        return state;
      }
      return {
        ...state,
        export: {
          status: 'done',
          requestId: state.export.requestId,
          paths: message.paths.map(String),
          cwd: typeof message.cwd === 'string' ? message.cwd : null,
          verified: typeof message.verified === 'boolean' ? message.verified : null,
          verification: Array.isArray(message.verification)
            ? message.verification.map(String)
            : [],
          message: null
        }
      };
    case 'error':
      if (message.request_id && isAnswerTo(state, message.request_id)) {
        return {
          ...state,
          export: { ...state.export, status: 'failed', message: message.message }
        };
      }
      return { ...state, lastError: message.message };
  }
}

function isAnswerTo(state: IKernelState, requestId: string | undefined): boolean {
  return state.export.status === 'pending' && requestId === state.export.requestId;
}

// --- what each section shows, derived from the records --------------------------------

export interface IDatasetRow {
  key: string;
  uri: string;
  mode: string;
  reader: string;
  digest: string;
  shape: string | null;
  cell: number | null;
  blocked: boolean;
  detail: string | null;
}

/** Dataset reads, writes and blocks; background digests folded into their access. */
export function datasetRows(records: IRecord[]): IDatasetRow[] {
  const digests = new Map<string, string>();
  for (const record of records) {
    if (record.kind === 'dataset.hashed') {
      digests.set(String(record.data.access_id), String(record.data.sha256));
    }
  }
  const rows: IDatasetRow[] = [];
  for (const record of records) {
    const data = record.data;
    if (record.kind === 'dataset.read' || record.kind === 'dataset.write') {
      const sha = data.sha256 ?? digests.get(String(data.access_id)) ?? null;
      rows.push({
        key: record.id,
        uri: String(data.uri),
        mode: String(data.mode),
        reader: String(data.reader),
        digest: sha ? `sha256 ${String(sha).slice(0, 12)}` : String(data.hash_status ?? ''),
        shape:
          typeof data.rows === 'number'
            ? `${data.rows.toLocaleString()} × ${String(data.columns)}`
            : null,
        cell: record.cell,
        blocked: false,
        detail: data.rule_action ? `rule ${String(data.rule)}: ${String(data.rule_action)}` : null
      });
    } else if (record.kind === 'dataset.blocked') {
      rows.push({
        key: record.id,
        uri: String(data.uri),
        mode: String(data.mode),
        reader: String(data.reader),
        digest: '',
        shape: null,
        cell: record.cell,
        blocked: true,
        detail: data.reason ? String(data.reason) : `rule ${String(data.rule)}`
      });
    }
  }
  return rows;
}

export interface IPiiColumn {
  column: string;
  entities: string[];
  share: number;
  examples: string[];
  action: string;
}

export interface IPiiFrameRow {
  key: string;
  variable: string;
  library: string;
  shape: string;
  columns: IPiiColumn[];
  blocked: boolean;
  cell: number | null;
}

/** Frames holding personal data; a frame reported again replaces its older report. */
export function piiFrames(records: IRecord[]): IPiiFrameRow[] {
  const byVariable = new Map<string, IPiiFrameRow>();
  for (const record of records) {
    if (record.kind !== 'pii.found' && record.kind !== 'pii.blocked') {
      continue;
    }
    const data = record.data;
    const findings: any[] = Array.isArray(data.findings) ? data.findings : [];
    const variable = String(data.variable);
    byVariable.delete(variable);
    byVariable.set(variable, {
      key: record.id,
      variable,
      library: String(data.library),
      shape: `${Number(data.rows).toLocaleString()} × ${String(data.columns)}`,
      columns: findings.map(f => ({
        column: String(f.column),
        entities: Array.isArray(f.entities) ? f.entities.map(String) : [],
        share: Number(f.share),
        examples: Array.isArray(f.examples) ? f.examples.map(String) : [],
        action: String(f.action)
      })),
      blocked: record.kind === 'pii.blocked',
      cell: record.cell
    });
  }
  return [...byVariable.values()];
}

export interface IPickleRow {
  key: string;
  path: string;
  status: 'blocked' | 'warned' | 'unsafe' | 'scanned' | 'safe';
  globals: string[];
  reason: string;
  loader: string | null;
  cell: number | null;
}

const PICKLE_KINDS: { [kind: string]: IPickleRow['status'] } = {
  'pickle.blocked': 'blocked',
  'pickle.warned': 'warned',
  'pickle.unsafe_file': 'unsafe',
  'pickle.file_scanned': 'scanned',
  'pickle.scanned': 'safe'
};

/** Pickle and model loads: blocks first, then warnings, then scans. */
export function pickleRows(records: IRecord[]): IPickleRow[] {
  const order = ['blocked', 'unsafe', 'warned', 'scanned', 'safe'];
  const rows: IPickleRow[] = [];
  for (const record of records) {
    const status = PICKLE_KINDS[record.kind];
    if (!status) {
      continue;
    }
    const data = record.data;
    rows.push({
      key: record.id,
      path: data.path ? String(data.path) : 'a pickle stream (file not known)',
      status:
        status === 'scanned' && data.verdict === 'safe' ? 'safe' : status,
      globals: Array.isArray(data.globals) ? data.globals.map(String) : [],
      reason: String(data.reason ?? data.verdict ?? ''),
      loader: data.loader ? String(data.loader) : null,
      cell: record.cell
    });
  }
  return rows
    .map((row, index) => ({ row, index }))
    .sort(
      (a, b) =>
        order.indexOf(a.row.status) - order.indexOf(b.row.status) || a.index - b.index
    )
    .map(({ row }) => row);
}
