/**
 * The panel's end of the comm with one kernel.
 *
 * The kernel lists its channel in `comm_info` (a comm it registered without
 * announcing it). The panel speaks on that comm id with plain messages: it
 * reads `comm_msg` from the connection's IOPub stream and sends `comm_msg` on
 * the shell channel. No `createComm`: JupyterLab lets only one connection per
 * kernel in a page handle comms (the first one), so a second notebook on the
 * kernel could not make a comm there, and its handler would not be called.
 * Every connection sees every IOPub message, so this works from any of them.
 *
 * The panel never closes the comm (a close is not this panel's to make: other
 * panels and tabs hold it). The kernel closes no comm either: its
 * `session.ended` event says the guardrails were switched off.
 */
import { Kernel, KernelMessage as JupyterMessage } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';

import { GuardrailsModel, SESSION_ENDED } from './model';
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

  /** True while the panel listens on the kernel's channel. */
  get isAttached(): boolean {
    return this._commId !== null;
  }

  /** Find the kernel's channel, listen and ask for a snapshot; or mark the kernel off. */
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
    const comms = content.status === 'ok' ? content.comms : {};
    const commId = Object.keys(comms).find(c => comms[c]?.target_name === COMM_TARGET);
    if (!commId) {
      this._model.off(id);
      return;
    }
    this._commId = commId;
    kernel.iopubMessage.connect(this._onIOPub, this);
    this.sync();
  }

  private _onIOPub(_: Kernel.IKernelConnection, message: JupyterMessage.IIOPubMessage): void {
    const type = message.header.msg_type;
    if (type !== 'comm_msg' && type !== 'comm_close') {
      return;
    }
    const content = (message as JupyterMessage.ICommMsgMsg<'iopub'>).content;
    if (content.comm_id !== this._commId) {
      return;
    }
    const id = this.kernel.id;
    if (type === 'comm_close') {
      // An older kernel package closes the channel on `%unload_ext`.
      this._detach();
      this._model.off(id);
      return;
    }
    this._model.handleMessage(id, content.data);
    if (isSessionEnd(content.data)) {
      // `%unload_ext`: the kernel forgot this comm. The next cell that runs
      // looks for the channel again (perhaps `%load_ext` made a new one).
      this._detach();
    }
  }

  private _send(message: PanelMessage): boolean {
    const kernel = this.kernel;
    if (this._commId === null || kernel.isDisposed) {
      return false;
    }
    const request = JupyterMessage.createMessage({
      msgType: 'comm_msg',
      channel: 'shell',
      username: kernel.username,
      session: kernel.clientId,
      content: { comm_id: this._commId, data: message as any }
    });
    // No reply comes to a comm_msg: the future is disposed when the kernel is idle again.
    kernel.sendShellMessage(request, false, true);
    return true;
  }

  private _detach(): void {
    if (this._commId !== null) {
      this._commId = null;
      this.kernel.iopubMessage.disconnect(this._onIOPub, this);
    }
  }

  private _commId: string | null = null;
  private _attaching: Promise<void> | null = null;
  private _disposed = false;
}

function isSessionEnd(data: unknown): boolean {
  const message = data as { type?: unknown; record?: { kind?: unknown } } | null;
  return message?.type === 'event' && message.record?.kind === SESSION_ENDED;
}
