/**
 * Interfaces of the mlsecops guardrails panel and the comm protocol it speaks
 * with the kernel (mlsecops_jupyter/channel.py, protocol v1).
 */
import { ISignal } from '@lumino/signaling';

/** The comm target the kernel registers on `%load_ext mlsecops_jupyter`. */
export const COMM_TARGET = 'mlsecops_jupyter';

/** The protocol version this panel speaks; every message carries it as `v`. */
export const PROTOCOL_VERSION = 1;

/** The code the "turn guardrails on" button runs in the kernel. */
export const LOAD_EXTENSION_CODE = '%load_ext mlsecops_jupyter';

export type Severity = 'info' | 'warning' | 'block' | 'error';

/** A stamped event, as the audit log stores it (`mlsecops.event/v1`). */
export interface IRecord {
  schema: string;
  id: string;
  kind: string;
  severity: Severity;
  time: string;
  session: string;
  cell: number | null;
  who: { [key: string]: unknown };
  summary: string;
  data: { [key: string]: any };
}

export interface IIdentity {
  user: string;
  jupyterhub_user: string | null;
  host: string;
  kernel_id: string | null;
  notebook: string | null;
  pid: number;
  session_started: string;
  display_name: string;
}

export interface IPolicyInfo {
  /** Where the policy came from, or null for the built-in defaults. */
  source: string | null;
  path: string | null;
  errors: string[];
}

export interface IAuditInfo {
  path: string;
  /** `ok`, `locked (3 events pending)`, `tampered at 12 (...)`, ... */
  status: string;
}

/**
 * A reviewed personal-data column kept in the policy file (`[[pii.reviewed]]`),
 * from the snapshot: in force without a `review.pii` event of this session.
 */
export interface IPolicyReviewInfo {
  column: string;
  /** null: the column name in every frame of the project. */
  variable: string | null;
  /** `false_positive` or `accepted`. */
  verdict: string;
  /** `variable` or `project`. */
  scope?: string;
  reason: string;
  policy_path: string | null;
}

export interface IGuardrailsInfo {
  on: boolean;
  names: string[];
}

// --- panel -> kernel ---------------------------------------------------------------

export interface ISyncRequest {
  v: number;
  type: 'sync_request';
  request_id?: string;
}

export interface IExportRequest {
  v: number;
  type: 'export_request';
  request_id?: string;
  model_paths: string[];
  out_dir: string;
}

export type PanelMessage = ISyncRequest | IExportRequest;

// --- kernel -> panel ---------------------------------------------------------------

export interface ISnapshotMessage {
  v: number;
  type: 'snapshot';
  request_id?: string;
  session: string;
  package_version: string;
  identity: IIdentity;
  policy: IPolicyInfo;
  audit: IAuditInfo;
  guardrails: IGuardrailsInfo;
  counts: { [kind: string]: number };
  records: IRecord[];
  records_left_out: number;
  /** The policy file's reviewed columns (older kernels leave it out). */
  policy_reviews?: IPolicyReviewInfo[];
}

export interface IEventMessage {
  v: number;
  type: 'event';
  record: IRecord;
}

export interface IExportResponseMessage {
  v: number;
  type: 'export_response';
  request_id?: string;
  /** The files written, absolute paths in the kernel's file system. */
  paths: string[];
  /** The kernel's working directory (older kernels leave it out). */
  cwd?: string;
  /** The written envelope checked by the kernel; null: it could not be checked. */
  verified?: boolean | null;
  /** One line per check (`OK   signature: ...`, `FAIL subject: ...`). */
  verification?: string[];
}

export interface IErrorMessage {
  v: number;
  type: 'error';
  request_id?: string;
  message: string;
}

export type KernelMessage =
  | ISnapshotMessage
  | IEventMessage
  | IExportResponseMessage
  | IErrorMessage;

// --- panel state -------------------------------------------------------------------

/**
 * Where the panel stands with one kernel.
 *
 * - `unknown`: no kernel, or not asked yet
 * - `connecting`: asked the kernel for the channel, no answer yet
 * - `off`: the kernel answered, the extension is not loaded there
 * - `on`: a snapshot arrived; events stream in
 */
export type ConnectionStatus = 'unknown' | 'connecting' | 'off' | 'on';

export interface IExportState {
  status: 'idle' | 'pending' | 'done' | 'failed';
  requestId: string | null;
  paths: string[];
  /** The kernel's working directory when it answered, to open the files written. */
  cwd: string | null;
  /** true/false: the kernel verified the envelope; null: not reported or not checkable. */
  verified: boolean | null;
  verification: string[];
  message: string | null;
}

export interface IKernelState {
  kernelId: string;
  status: ConnectionStatus;
  /** Why the panel is off, for the empty state (e.g. "the kernel restarted"). */
  reason: string | null;
  session: string | null;
  identity: IIdentity | null;
  policy: IPolicyInfo | null;
  audit: IAuditInfo | null;
  guardrails: IGuardrailsInfo | null;
  records: IRecord[];
  recordsLeftOut: number;
  /** The policy file's reviewed columns, as of the last snapshot. */
  policyReviews: IPolicyReviewInfo[];
  export: IExportState;
  /** The last error the kernel answered with, outside an export. */
  lastError: string | null;
}

/** The panel's state, one entry per kernel it has talked to. */
export interface IGuardrailsModel {
  readonly activeKernelId: string | null;
  readonly active: IKernelState | null;
  /** Emitted with the kernel id whose state changed. */
  readonly changed: ISignal<IGuardrailsModel, string>;
  /** Emitted when the panel follows another kernel (or none). */
  readonly activeChanged: ISignal<IGuardrailsModel, string | null>;
  state(kernelId: string): IKernelState | null;
}
