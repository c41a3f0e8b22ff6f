/**
 * The panel's end of the comm with one kernel.
 *
 * The kernel lists its channel in `comm_info` (a comm it registered without
 * announcing it). The panel attaches to that comm id with `createComm` (no
 * `open`: the kernel side exists already) and asks for a snapshot. It never
 * `close()`s the comm, which would close it for every other panel and tab:
 * it disposes its handler.
 */
import { Kernel, KernelMessage as JupyterMessage } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';

import { GuardrailsModel } from './model';
import { exportRequest, newRequestId, syncRequest } from './protocol';
import { COMM_TARGET, LOAD_EXTENSION_CODE, PanelMessage } from './tokens';

export class KernelChannel implements IDisposable {
  constructor(
    readonly kernel: Kernel.IKernelConnection,
    private readonly _model: GuardrailsModel
  ) {}

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** True while a comm handler is attached and the kernel has not closed it. */
  get isAttached(): boolean {
    return this._comm !== null && !this._comm.isDisposed;
  }

  /** Find the kernel's channel, attach and ask for a snapshot; or mark the kernel off. */
  async attach(): Promise<void> {
    if (this._disposed || this._attaching) {
      return this._attaching ?? undefined;
    }
    this._attaching = this._attach().finally(() => {
      this._attaching = null;
    });
    return this._attaching;
  }

  /** Ask again for everything (e.g. after a reconnect). */
  sync(): void {
    this._send(syncRequest(newRequestId()));
  }

  /** Ask the kernel to write the provenance record. */
  requestExport(modelPaths: string[], outDir: string): void {
    const id = this.kernel.id;
    const requestId = newRequestId();
    this._model.exportRequested(id, requestId);
    if (!this._send(exportRequest(modelPaths, outDir, requestId))) {
      this._model.exportFailed(id, 'the guardrails are not on in this kernel');
    }
  }

  /** Run `%load_ext mlsecops_jupyter` in the kernel, then attach. */
  async loadExtension(): Promise<void> {
    this._model.connecting(this.kernel.id);
    const future = this.kernel.requestExecute({
      code: LOAD_EXTENSION_CODE,
      silent: false,
      store_history: false
    });
    await future.done;
    await this.attach();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._detach();
  }

  private async _attach(): Promise<void> {
    const kernel = this.kernel;
    const id = kernel.id;
    if (this.isAttached) {
      this.sync();
      return;
    }
    this._model.connecting(id);
    let reply: JupyterMessage.ICommInfoReplyMsg;
    try {
      reply = await kernel.requestCommInfo({ target_name: COMM_TARGET });
    } catch (error) {
      if (!this._disposed) {
        this._model.off(id, `the kernel did not answer (${String(error)})`);
      }
      return;
    }
    if (this._disposed) {
      return;
    }
    const content = reply.content;
    const comms = content.status === 'ok' ? Object.keys(content.comms) : [];
    const commId = comms.find(
      c => (content as any).comms[c]?.target_name === COMM_TARGET
    );
    if (!commId) {
      this._model.off(id);
      return;
    }
    // Another handler in this page may hold the id (two notebooks on one kernel
    // share a connection only in rare setups); its messages reach us too.
    if (kernel.hasComm(commId)) {
      this._model.off(id, 'another panel in this page holds the channel');
      return;
    }
    const comm = kernel.createComm(COMM_TARGET, commId);
    comm.onMsg = message => {
      this._model.handleMessage(id, message.content.data);
    };
    comm.onClose = () => {
      // The kernel closed it: `%unload_ext`, or the kernel is going away.
      this._comm = null;
      if (!this._disposed) {
        this._model.off(id);
      }
    };
    this._comm = comm;
    this.sync();
  }

  private _send(message: PanelMessage): boolean {
    const comm = this._comm;
    if (!comm || comm.isDisposed) {
      return false;
    }
    comm.send(message as any);
    return true;
  }

  private _detach(): void {
    const comm = this._comm;
    this._comm = null;
    if (comm && !comm.isDisposed) {
      comm.dispose();
    }
  }

  private _comm: Kernel.IComm | null = null;
  private _attaching: Promise<void> | null = null;
  private _disposed = false;
}
