// The panel's end of the channel against a stand-in kernel connection: what it
// sends, which IOPub messages it listens to, when it lets go.
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import { KernelChannel } from '../channel';
import { GuardrailsModel } from '../model';

const BEACON = '0123456789abcdef0123456789abcdef';

class FakeKernel {
  id = 'k1';
  clientId = 'client-1';
  username = 'alice';
  isDisposed = false;
  comms: { [id: string]: { target_name: string } } = { [BEACON]: { target_name: 'mlsecops_jupyter' } };
  sent: KernelMessage.IShellMessage[] = [];
  iopubMessage = new Signal<this, KernelMessage.IIOPubMessage>(this);

  async requestCommInfo(content: { target_name?: string }) {
    expect(content.target_name).toBe('mlsecops_jupyter');
    return { content: { status: 'ok', comms: this.comms } };
  }

  sendShellMessage(message: KernelMessage.IShellMessage): void {
    this.sent.push(message);
  }

  /** A comm message from the kernel, as IOPub carries it to every connection. */
  emit(commId: string, data: unknown, type: 'comm_msg' | 'comm_close' = 'comm_msg'): void {
    const message = {
      header: { msg_type: type, msg_id: `m${Math.random()}`, session: 'kernel-session' },
      parent_header: {},
      metadata: {},
      channel: 'iopub',
      content: { comm_id: commId, data },
      buffers: []
    };
    this.iopubMessage.emit(message as unknown as KernelMessage.IIOPubMessage);
  }
}

function attached(): { kernel: FakeKernel; model: GuardrailsModel; channel: KernelChannel } {
  const kernel = new FakeKernel();
  const model = new GuardrailsModel();
  model.setActive('k1');
  const channel = new KernelChannel(kernel as unknown as Kernel.IKernelConnection, model);
  return { kernel, model, channel };
}

function snapshot(): unknown {
  return {
    v: 1,
    type: 'snapshot',
    session: 'S',
    identity: { display_name: 'alice@h' },
    guardrails: { on: true, names: ['pii'] },
    records: []
  };
}

function event(kind: string, data: unknown = {}): unknown {
  return {
    v: 1,
    type: 'event',
    record: { id: `r-${kind}`, kind, summary: kind, session: 'S', cell: 1, data }
  };
}

describe('KernelChannel', () => {
  it('speaks on the listed comm id with plain comm_msg messages (no comm of its own)', async () => {
    const { kernel, model, channel } = attached();
    await channel.attach();
    expect(channel.isAttached).toBe(true);
    expect(kernel.sent).toHaveLength(1);
    const [sync] = kernel.sent;
    expect(sync.header.msg_type).toBe('comm_msg');
    expect(sync.channel).toBe('shell');
    expect(sync.header.session).toBe('client-1');
    expect(sync.content).toMatchObject({ comm_id: BEACON, data: { v: 1, type: 'sync_request' } });

    kernel.emit(BEACON, snapshot());
    expect(model.active?.status).toBe('on');
    // Another comm's messages (widgets, another target) are not the panel's.
    kernel.emit('ffffffffffffffffffffffffffffffff', event('dataset.read'));
    kernel.emit(BEACON, event('pickle.scanned'));
    expect(model.active?.records.map(r => r.kind)).toEqual(['pickle.scanned']);

    channel.requestExport(['m.joblib'], 'provenance');
    expect(kernel.sent[1].content).toMatchObject({
      comm_id: BEACON,
      data: { type: 'export_request', model_paths: ['m.joblib'], out_dir: 'provenance' }
    });
    expect(model.active?.export.status).toBe('pending');
  });

  it('says "off" when the kernel lists no channel, and sends nothing', async () => {
    const { kernel, model, channel } = attached();
    kernel.comms = {};
    await channel.attach();
    expect(channel.isAttached).toBe(false);
    expect(model.active?.status).toBe('off');
    channel.requestExport(['m.joblib'], 'provenance');
    expect(kernel.sent).toEqual([]);
    expect(model.active?.export.status).toBe('failed');
  });

  it("lets go on the session's end (`%unload_ext`) and when disposed", async () => {
    const { kernel, model, channel } = attached();
    await channel.attach();
    kernel.emit(BEACON, snapshot());
    kernel.emit(BEACON, event('session.ended', { reason: 'unloaded' }));
    expect(channel.isAttached).toBe(false);
    expect(model.active?.status).toBe('off');
    kernel.emit(BEACON, snapshot()); // no longer listened to
    expect(model.active?.status).toBe('off');

    await channel.attach(); // the next cell: the channel is looked for again
    expect(channel.isAttached).toBe(true);
    kernel.emit(BEACON, snapshot());
    expect(model.active?.status).toBe('on');
    channel.dispose(); // the panel follows another notebook
    expect(channel.isAttached).toBe(false);
    kernel.emit(BEACON, event('dataset.read'));
    expect(model.active?.records).toEqual([]);
    await channel.attach();
    expect(channel.isAttached).toBe(false); // disposed for good
  });

  it('an older kernel that closes the comm turns the panel off', async () => {
    const { kernel, model, channel } = attached();
    await channel.attach();
    kernel.emit(BEACON, snapshot());
    kernel.emit(BEACON, {}, 'comm_close');
    expect(channel.isAttached).toBe(false);
    expect(model.active?.status).toBe('off');
  });
});
