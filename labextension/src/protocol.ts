/**
 * Building and checking protocol v1 messages. The kernel is trusted code, but
 * an older or newer kernel package may speak another version: anything the
 * panel does not understand is rejected here, not half-rendered.
 */
import {
  IExportRequest,
  ISyncRequest,
  KernelMessage,
  PROTOCOL_VERSION
} from './tokens';

let counter = 0;

/** A request id, unique within this page. */
export function newRequestId(): string {
  counter += 1;
  return `panel-${Date.now().toString(36)}-${counter}`;
}

export function syncRequest(requestId?: string): ISyncRequest {
  const message: ISyncRequest = { v: PROTOCOL_VERSION, type: 'sync_request' };
  if (requestId) {
    message.request_id = requestId;
  }
  return message;
}

export function exportRequest(
  modelPaths: string[],
  outDir: string,
  requestId: string
): IExportRequest {
  return {
    v: PROTOCOL_VERSION,
    type: 'export_request',
    request_id: requestId,
    model_paths: modelPaths,
    out_dir: outDir
  };
}

/** Split a path field ("a.joblib, b.pt" or one per line) into paths. */
export function parsePaths(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map(part => part.trim())
    .filter(part => part.length > 0);
}

/** The directory part of a `/`-separated path ('' for a top-level name). */
export function dirname(path: string): string {
  const index = path.replace(/\/+$/, '').lastIndexOf('/');
  return index <= 0 ? '' : path.slice(0, index);
}

/**
 * Where a file the kernel wrote is, relative to the server's root (what
 * `docmanager:open` takes), or null when that cannot be told.
 *
 * The kernel reports its working directory; the server starts a notebook's
 * kernel in the notebook's directory, so the root is `cwd` minus that directory.
 */
export function serverPath(file: string, cwd: string, notebookPath: string): string | null {
  const directory = dirname(notebookPath.replace(/^\/+/, ''));
  let root = cwd.replace(/\/+$/, '');
  if (directory) {
    if (!root.endsWith(`/${directory}`)) {
      return null;
    }
    root = root.slice(0, root.length - directory.length - 1);
  }
  if (!file.startsWith(`${root}/`)) {
    return null;
  }
  const relative = file.slice(root.length + 1);
  return relative.split('/').includes('..') ? null : relative;
}

/** An item of the file browser's selection: what the panel needs of it. */
export interface ISelectedItem {
  type: string;
  path: string;
}

/**
 * The first selected file that can be a model (not a folder, not a notebook),
 * as a server path, or null: the default of the export form's path field.
 */
export function modelFileSelection(items: Iterable<ISelectedItem>): string | null {
  for (const item of items) {
    if (item.type !== 'directory' && item.type !== 'notebook') {
      return item.path;
    }
  }
  return null;
}

/** A server path (say, the file browser's selection) as the kernel sees it from `notebookPath`'s directory. */
export function kernelRelativePath(path: string, notebookPath: string): string {
  const from = dirname(notebookPath.replace(/^\/+/, '')).split('/').filter(Boolean);
  const to = path.replace(/^\/+/, '').split('/').filter(Boolean);
  let common = 0;
  while (common < from.length && common < to.length - 1 && from[common] === to[common]) {
    common += 1;
  }
  return [...from.slice(common).map(() => '..'), ...to.slice(common)].join('/');
}

export type ParseResult =
  | { ok: true; message: KernelMessage }
  | { ok: false; problem: string };

function isObject(value: unknown): value is { [key: string]: any } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPolicyReview(value: unknown): boolean {
  return (
    isObject(value) &&
    typeof value.column === 'string' &&
    typeof value.verdict === 'string' &&
    typeof value.reason === 'string' &&
    (value.variable === null || value.variable === undefined || typeof value.variable === 'string')
  );
}

function isRecord(value: unknown): boolean {
  return (
    isObject(value) &&
    typeof value.id === 'string' &&
    typeof value.kind === 'string' &&
    typeof value.summary === 'string' &&
    isObject(value.data)
  );
}

/** Check a comm message's `data` from the kernel. */
export function parseKernelMessage(data: unknown): ParseResult {
  if (!isObject(data)) {
    return { ok: false, problem: 'not a JSON object' };
  }
  if (data.v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      problem:
        `the kernel speaks protocol v${String(data.v)}, this panel v${PROTOCOL_VERSION}: ` +
        'install the same mlsecops-jupyter version in the kernel and in JupyterLab'
    };
  }
  switch (data.type) {
    case 'snapshot':
      if (
        !Array.isArray(data.records) ||
        !data.records.every(isRecord) ||
        !isObject(data.identity) ||
        !isObject(data.guardrails) ||
        // Added after v1's first release: older kernels leave it out.
        (data.policy_reviews !== undefined &&
          !(Array.isArray(data.policy_reviews) && data.policy_reviews.every(isPolicyReview)))
      ) {
        return { ok: false, problem: 'malformed snapshot' };
      }
      return { ok: true, message: data as KernelMessage };
    case 'event':
      if (!isRecord(data.record)) {
        return { ok: false, problem: 'malformed event' };
      }
      return { ok: true, message: data as KernelMessage };
    case 'export_response':
      if (!Array.isArray(data.paths)) {
        return { ok: false, problem: 'malformed export_response' };
      }
      return { ok: true, message: data as KernelMessage };
    case 'error':
      if (typeof data.message !== 'string') {
        return { ok: false, problem: 'malformed error' };
      }
      return { ok: true, message: data as KernelMessage };
    default:
      return { ok: false, problem: `unknown message type ${String(data.type)}` };
  }
}
