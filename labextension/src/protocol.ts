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

export type ParseResult =
  | { ok: true; message: KernelMessage }
  | { ok: false; problem: string };

function isObject(value: unknown): value is { [key: string]: any } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
        !isObject(data.guardrails)
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
