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
  IPolicyReviewInfo,
  IRecord,
  KernelMessage
} from './tokens';

/** The last event of a session: the kernel switched the guardrails off. */
export const SESSION_ENDED = 'session.ended';

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
    policyReviews: [],
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
      // The reason it was off stays until a snapshot says it is on.
      return state.status === 'on' ? state : { ...state, status: 'connecting' };
    });
  }

  /**
   * The kernel restarted (or died): a new process under the same id, in which
   * the guardrails are off until loaded again. Nothing of the old session is
   * current, so nothing of it is shown.
   */
  reset(kernelId: string, reason: string): void {
    this._update(kernelId, () => ({ ...emptyState(kernelId), status: 'off', reason }));
  }

  /** The extension is not (or no longer) loaded in this kernel. */
  off(kernelId: string, reason: string | null = null): void {
    this._update(kernelId, state => ({
      ...state,
      status: 'off',
      reason: reason ?? state.reason,
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
        policyReviews: message.policy_reviews ?? [],
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
      if (record.kind === SESSION_ENDED) {
        // `%unload_ext` (the kernel closes no comm: this is how the panel
        // hears it). What the session saw stays shown under "guardrails off".
        const why = typeof record.data.reason === 'string' ? ` (${record.data.reason})` : '';
        return {
          ...state,
          records,
          recordsLeftOut: leftOut,
          status: 'off',
          reason: `the guardrails were switched off${why}`,
          guardrails: state.guardrails ? { ...state.guardrails, on: false } : null
        };
      }
      return { ...state, records, recordsLeftOut: leftOut };
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

/**
 * A person's review of a personal-data finding: made in this session (a
 * `review.pii` event), or kept in the policy file by an earlier one.
 */
export interface IPiiReview {
  key: string;
  /** null: the column name in every frame of the project. */
  variable: string | null;
  column: string;
  entities: string[];
  /** `false_positive` or `accepted`. */
  verdict: string;
  /** `variable` or `project`. */
  scope: string;
  reason: string;
  /** The policy file the review was written to, or null (this session only). */
  policyPath: string | null;
  cell: number | null;
  /**
   * `session`: a `review.pii` event of this session; `policy`: found in the
   * policy file (`[[pii.reviewed]]`), decided before this session.
   */
  source: 'session' | 'policy';
}

export interface IPiiColumn {
  column: string;
  entities: string[];
  share: number;
  examples: string[];
  action: string;
  /** The latest review covering this column of this frame, or null. */
  review: IPiiReview | null;
}

export interface IPiiFrameRow {
  key: string;
  variable: string;
  aliases: string[];
  library: string;
  shape: string;
  columns: IPiiColumn[];
  blocked: boolean;
  cell: number | null;
}

/** The words the panel shows for a review verdict. */
export function verdictLabel(verdict: string): string {
  return verdict === 'false_positive' ? 'false positive' : verdict.replace(/_/g, ' ');
}

function piiReview(record: IRecord): IPiiReview {
  const data = record.data;
  return {
    key: record.id,
    variable: typeof data.variable === 'string' && data.variable ? data.variable : null,
    column: String(data.column),
    entities: Array.isArray(data.entities) ? data.entities.map(String) : [],
    verdict: String(data.verdict),
    scope: String(data.scope ?? (data.variable ? 'variable' : 'project')),
    reason: String(data.reason ?? ''),
    policyPath: typeof data.policy_path === 'string' ? data.policy_path : null,
    cell: record.cell,
    source: 'session'
  };
}

/** The snapshot's reviews from the policy file, as reviews the panel shows. */
export function policyReviews(infos: IPolicyReviewInfo[]): IPiiReview[] {
  return infos.map(info => {
    const variable = info.variable ? info.variable : null;
    return {
      key: `policy\u0000${variable ?? '*'}\u0000${info.column}`,
      variable,
      column: info.column,
      entities: [],
      verdict: info.verdict,
      scope: info.scope ?? (variable ? 'variable' : 'project'),
      reason: info.reason,
      policyPath: info.policy_path,
      cell: null,
      source: 'policy'
    };
  });
}

/** The reviews of personal-data findings, in the order they were made. */
export function piiReviews(records: IRecord[]): IPiiReview[] {
  return records.filter(r => r.kind === 'review.pii').map(piiReview);
}

/** Whether `review` covers `column` of a frame bound to one of `names`. */
export function reviewCovers(review: IPiiReview, column: string, names: string[]): boolean {
  return review.column === column && (review.variable === null || names.includes(review.variable));
}

function latestReview(
  reviews: IPiiReview[],
  column: string,
  names: string[]
): IPiiReview | null {
  for (let index = reviews.length - 1; index >= 0; index -= 1) {
    if (reviewCovers(reviews[index], column, names)) {
      return reviews[index];
    }
  }
  return null;
}

/**
 * Frames holding personal data; a frame reported again replaces its older
 * report. A reviewed column carries its review; once reviewed, the scan leaves
 * it out of the frame's later reports, so it is kept from the earlier one.
 * `fromPolicy` (the policy file's reviews) count as made before the session's.
 */
export function piiFrames(records: IRecord[], fromPolicy: IPiiReview[] = []): IPiiFrameRow[] {
  const byVariable = new Map<string, IPiiFrameRow>();
  const reviews: IPiiReview[] = [...fromPolicy];
  for (const record of records) {
    if (record.kind === 'review.pii') {
      reviews.push(piiReview(record));
      continue;
    }
    if (record.kind !== 'pii.found' && record.kind !== 'pii.blocked') {
      continue;
    }
    const data = record.data;
    const findings: any[] = Array.isArray(data.findings) ? data.findings : [];
    const variable = String(data.variable);
    const aliases: string[] = Array.isArray(data.aliases) ? data.aliases.map(String) : [];
    const names = [variable, ...aliases];
    const columns: IPiiColumn[] = findings.map(f => ({
      column: String(f.column),
      entities: Array.isArray(f.entities) ? f.entities.map(String) : [],
      share: Number(f.share),
      examples: Array.isArray(f.examples) ? f.examples.map(String) : [],
      action: String(f.action),
      review: null
    }));
    const before = byVariable.get(variable);
    if (before) {
      const reported = new Set(columns.map(c => c.column));
      for (const column of before.columns) {
        if (!reported.has(column.column) && latestReview(reviews, column.column, names)) {
          columns.push(column);
        }
      }
    }
    byVariable.delete(variable);
    byVariable.set(variable, {
      key: record.id,
      variable,
      aliases,
      library: String(data.library),
      shape: `${Number(data.rows).toLocaleString()} × ${String(data.columns)}`,
      columns,
      blocked: record.kind === 'pii.blocked',
      cell: record.cell
    });
  }
  return [...byVariable.values()].map(frame => {
    const names = [frame.variable, ...frame.aliases];
    const columns = frame.columns.map(column => ({
      ...column,
      review: latestReview(reviews, column.column, names)
    }));
    // A frame whose blocked columns were all reviewed no longer stands out as blocked.
    const blocked = frame.blocked && columns.some(c => c.action === 'block' && !c.review);
    return { ...frame, columns, blocked };
  });
}

/**
 * Reviews that cover no column the panel shows (say, a column name reviewed for
 * the project, or a review in the policy file of a column the scan no longer
 * reports); a review of this session replaces the policy file's of that column.
 */
export function reviewsWithoutFinding(
  records: IRecord[],
  frames: IPiiFrameRow[],
  fromPolicy: IPiiReview[] = []
): IPiiReview[] {
  const shown = new Set(
    frames.flatMap(frame => frame.columns.map(c => c.review?.key).filter(Boolean))
  );
  const latest = new Map<string, IPiiReview>();
  for (const review of [...fromPolicy, ...piiReviews(records)]) {
    latest.set(`${review.variable ?? '*'}\u0000${review.column}`, review);
  }
  return [...latest.values()].filter(review => !shown.has(review.key));
}

/** A pickle global a person allowed (`review.pickle_allowed`). */
export interface IPickleAllowance {
  key: string;
  /** `module:name`. */
  qualified: string;
  /** A known-dangerous global: an explicit, confirmed override. */
  dangerous: boolean;
  /** `session` or `policy`. */
  scope: string;
  reason: string;
  policyPath: string | null;
  cell: number | null;
}

/** The globals allowed so far, the latest allowance of each, in the order made. */
export function allowedGlobals(records: IRecord[]): IPickleAllowance[] {
  const byGlobal = new Map<string, IPickleAllowance>();
  for (const record of records) {
    if (record.kind !== 'review.pickle_allowed') {
      continue;
    }
    const data = record.data;
    const qualified = String(data.qualified);
    byGlobal.delete(qualified);
    byGlobal.set(qualified, {
      key: record.id,
      qualified,
      dangerous: data.dangerous === true,
      scope: String(data.scope ?? 'session'),
      reason: String(data.reason ?? ''),
      policyPath: typeof data.policy_path === 'string' ? data.policy_path : null,
      cell: record.cell
    });
  }
  return [...byGlobal.values()];
}

export interface IPickleGlobal {
  /** `module:name`, as the scanner names it. */
  name: string;
  /** Allowed since by a person, or null. */
  allowed: IPickleAllowance | null;
}

export interface IPickleRow {
  key: string;
  path: string;
  status: 'blocked' | 'warned' | 'unsafe' | 'scanned' | 'safe';
  globals: IPickleGlobal[];
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

/**
 * Pickle and model loads: blocks first, then warnings, then scans. `allowances`:
 * `allowedGlobals(records)`, when the caller has it already.
 */
export function pickleRows(
  records: IRecord[],
  allowances: IPickleAllowance[] = allowedGlobals(records)
): IPickleRow[] {
  const order = ['blocked', 'unsafe', 'warned', 'scanned', 'safe'];
  const allowed = new Map(allowances.map(a => [a.qualified, a]));
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
      globals: (Array.isArray(data.globals) ? data.globals.map(String) : []).map(
        (name: string) => ({ name, allowed: allowed.get(name) ?? null })
      ),
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
