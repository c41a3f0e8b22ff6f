/**
 * The mlsecops guardrails sidebar: follows the active notebook's kernel and
 * shows what the guardrails saw there, live.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';

import { KernelChannel } from './channel';
import { GuardrailsModel } from './model';
import { GuardrailsPanel } from './panel';
import { kernelRelativePath, modelFileSelection, serverPath } from './protocol';

const PLUGIN_ID = 'mlsecops-jupyter:plugin';

export namespace CommandIDs {
  export const open = 'mlsecops:open-panel';
  export const refresh = 'mlsecops:refresh';
}

/** Kernel statuses that end the guardrails' session, and what the panel says about it. */
const ENDED_SESSION: { [status: string]: string } = {
  restarting: 'the kernel restarted',
  autorestarting: 'the kernel restarted',
  dead: 'the kernel died'
};

/** Follows the current notebook's kernel and keeps one channel to it. */
class KernelFollower {
  constructor(
    private readonly _tracker: INotebookTracker,
    readonly model: GuardrailsModel
  ) {
    _tracker.currentChanged.connect((_, panel) => this._follow(panel), this);
    NotebookActions.executed.connect((_, { notebook }) => {
      // A cell ran while detached: perhaps it was `%load_ext mlsecops_jupyter`.
      const current = this._tracker.currentWidget;
      if (current && current.content === notebook && !this._channel?.isAttached) {
        void this._channel?.attach();
      }
    }, this);
    this._follow(_tracker.currentWidget);
  }

  get channel(): KernelChannel | null {
    return this._channel;
  }

  /** The followed notebook's path from the server's root, or null. */
  get notebookPath(): string | null {
    return this._panel?.context.path ?? null;
  }

  /**
   * Run `%load_ext mlsecops_jupyter` in the followed notebook's kernel. Right
   * after a restart there is no channel yet (it is made once the kernel is
   * idle): make it now rather than ignore the click.
   */
  loadExtension(): void {
    if (!this._channel) {
      const kernel = this._panel?.sessionContext.session?.kernel ?? null;
      if (!kernel) {
        return;
      }
      this._setKernel(kernel, true);
    }
    void this._channel?.loadExtension();
  }

  refresh(): void {
    if (this._channel?.isAttached) {
      this._channel.sync();
    } else {
      void this._channel?.attach();
    }
  }

  private _follow(panel: NotebookPanel | null): void {
    if (this._panel === panel) {
      return;
    }
    if (this._panel) {
      const context = this._panel.sessionContext;
      context.kernelChanged.disconnect(this._onKernelChanged, this);
      context.statusChanged.disconnect(this._onStatus, this);
      context.connectionStatusChanged.disconnect(this._onConnection, this);
    }
    this._panel = panel;
    if (panel) {
      const context = panel.sessionContext;
      context.kernelChanged.connect(this._onKernelChanged, this);
      context.statusChanged.connect(this._onStatus, this);
      context.connectionStatusChanged.connect(this._onConnection, this);
      void context.ready.then(() => {
        if (this._panel === panel) {
          this._setKernel(context.session?.kernel ?? null);
        }
      });
    }
    this._setKernel(panel?.sessionContext.session?.kernel ?? null);
  }

  private _onKernelChanged(): void {
    this._setKernel(this._panel?.sessionContext.session?.kernel ?? null);
  }

  private _onStatus(_: unknown, status: Kernel.Status): void {
    const kernel = this._panel?.sessionContext.session?.kernel ?? null;
    if (!kernel) {
      return;
    }
    const ended = ENDED_SESSION[status];
    if (ended) {
      // A new process under the same kernel id (or none): the guardrails are
      // off there until loaded again, and nothing the old one saw is current.
      this._channel?.dispose();
      this._channel = null;
      this.model.reset(kernel.id, ended);
    } else if (status === 'idle' && !this._channel) {
      this._setKernel(kernel, true);
    }
  }

  private _onConnection(_: unknown, status: Kernel.ConnectionStatus): void {
    if (status === 'connected') {
      // After a websocket reconnect the kernel may have been restarted or the
      // extension reloaded: ask again.
      this.refresh();
    }
  }

  private _setKernel(kernel: Kernel.IKernelConnection | null, force = false): void {
    if (!force && this._channel && kernel && this._channel.kernel === kernel) {
      return;
    }
    this._channel?.dispose();
    this._channel = kernel ? new KernelChannel(kernel, this.model) : null;
    this.model.setActive(kernel?.id ?? null);
    void this._channel?.attach();
  }

  private _panel: NotebookPanel | null = null;
  private _channel: KernelChannel | null = null;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Sidebar panel of the mlsecops guardrails: datasets read, personal data, pickle loads, provenance.',
  autoStart: true,
  // Only the notebook tracker is required: JupyterLab and Notebook 7's
  // notebook page both provide it. The rest is JupyterLab's, or absent on
  // some Notebook 7 pages: used when there.
  requires: [INotebookTracker],
  optional: [ICommandPalette, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    fileBrowser: IDefaultFileBrowser | null
  ) => {
    const model = new GuardrailsModel();
    const follower = new KernelFollower(tracker, model);
    const panel = new GuardrailsPanel(model, {
      loadExtension: () => follower.loadExtension(),
      requestExport: (paths, outDir) => follower.channel?.requestExport(paths, outDir),
      selectedModelPath: () => {
        // No file browser on some Notebook 7 pages: no default then.
        const selected = fileBrowser ? modelFileSelection(fileBrowser.selectedItems()) : null;
        const notebook = follower.notebookPath;
        return selected && notebook !== null ? kernelRelativePath(selected, notebook) : null;
      },
      openablePath: (file, cwd) => {
        const notebook = follower.notebookPath;
        return cwd && notebook !== null ? serverPath(file, cwd, notebook) : null;
      },
      openFile: path => {
        void app.commands.execute('docmanager:open', { path });
      }
    });
    app.shell.add(panel, 'right', { rank: 900 });

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show mlsecops Guardrails',
      caption: 'Open the guardrails panel of the current notebook',
      execute: () => {
        app.shell.activateById(panel.id);
        follower.refresh();
      }
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh mlsecops Guardrails',
      execute: () => follower.refresh()
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.open, category: 'mlsecops' });
      palette.addItem({ command: CommandIDs.refresh, category: 'mlsecops' });
    }
  }
};

export default plugin;
