import {
  dirname,
  exportRequest,
  kernelRelativePath,
  modelFileSelection,
  parseKernelMessage,
  parsePaths,
  serverPath,
  syncRequest
} from '../protocol';

describe('requests the panel sends', () => {
  it('are versioned and typed', () => {
    expect(syncRequest()).toEqual({ v: 1, type: 'sync_request' });
    expect(syncRequest('r1')).toEqual({ v: 1, type: 'sync_request', request_id: 'r1' });
    expect(exportRequest(['m.joblib'], 'out', 'r2')).toEqual({
      v: 1,
      type: 'export_request',
      request_id: 'r2',
      model_paths: ['m.joblib'],
      out_dir: 'out'
    });
  });

  it('split the model path field on commas and lines', () => {
    expect(parsePaths(' a.joblib, b.pt\n\nc.pkl ,')).toEqual(['a.joblib', 'b.pt', 'c.pkl']);
    expect(parsePaths('   ')).toEqual([]);
  });
});

describe('messages from the kernel', () => {
  const record = {
    schema: 'mlsecops.event/v1',
    id: 'r',
    kind: 'dataset.read',
    severity: 'info',
    time: 't',
    session: 's',
    cell: 1,
    who: {},
    summary: 'read',
    data: {}
  };

  it('are accepted when well formed', () => {
    expect(parseKernelMessage({ v: 1, type: 'event', record }).ok).toBe(true);
    expect(parseKernelMessage({ v: 1, type: 'error', message: 'no' }).ok).toBe(true);
    expect(parseKernelMessage({ v: 1, type: 'export_response', paths: [] }).ok).toBe(true);
  });

  it('a snapshot with or without the policy file reviews (older kernels leave them out)', () => {
    const snapshot = {
      v: 1,
      type: 'snapshot',
      records: [record],
      identity: {},
      guardrails: { on: true, names: [] }
    };
    expect(parseKernelMessage(snapshot).ok).toBe(true);
    const review = {
      column: 'email',
      variable: 'customers',
      verdict: 'false_positive',
      scope: 'variable',
      reason: 'synthetic',
      policy_path: '/p/mlsecops.toml'
    };
    expect(parseKernelMessage({ ...snapshot, policy_reviews: [review] }).ok).toBe(true);
    expect(
      parseKernelMessage({ ...snapshot, policy_reviews: [{ ...review, variable: null }] }).ok
    ).toBe(true);
    expect(parseKernelMessage({ ...snapshot, policy_reviews: 'email' }).ok).toBe(false);
    expect(
      parseKernelMessage({ ...snapshot, policy_reviews: [{ ...review, column: 3 }] }).ok
    ).toBe(false);
  });

  it('from another protocol version are refused with a hint', () => {
    const result = parseKernelMessage({ v: 2, type: 'event', record });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problem).toContain('protocol v2');
  });

  it('that are malformed or unknown are refused', () => {
    expect(parseKernelMessage(null).ok).toBe(false);
    expect(parseKernelMessage([1]).ok).toBe(false);
    expect(parseKernelMessage({ v: 1, type: 'event', record: { id: 1 } }).ok).toBe(false);
    expect(parseKernelMessage({ v: 1, type: 'snapshot', records: 'x' }).ok).toBe(false);
    expect(parseKernelMessage({ v: 1, type: 'launch' }).ok).toBe(false);
  });
});

describe('paths between the kernel and the server', () => {
  it('takes the directory of a path', () => {
    expect(dirname('a/b/c.ipynb')).toBe('a/b');
    expect(dirname('c.ipynb')).toBe('');
    expect(dirname('/c.ipynb')).toBe('');
  });

  it('finds a written file under the server root from the kernel cwd', () => {
    expect(serverPath('/srv/nb/provenance/m.intoto.json', '/srv/nb', 'tour.ipynb')).toBe(
      'provenance/m.intoto.json'
    );
    expect(
      serverPath('/srv/projects/churn/out/m.cdx.json', '/srv/projects/churn', 'projects/churn/x.ipynb')
    ).toBe('projects/churn/out/m.cdx.json');
    expect(serverPath('/srv/other/m.cdx.json', '/srv/projects/churn', 'projects/churn/x.ipynb')).toBe(
      'other/m.cdx.json'
    );
    // The kernel moved away from the notebook's directory, or wrote outside the root.
    expect(serverPath('/tmp/m.cdx.json', '/tmp', 'projects/x.ipynb')).toBeNull();
    expect(serverPath('/elsewhere/m.cdx.json', '/srv', 'x.ipynb')).toBeNull();
    expect(serverPath('/srv/../etc/m.json', '/srv', 'x.ipynb')).toBeNull();
  });

  it('turns a server path into one relative to the notebook directory', () => {
    expect(kernelRelativePath('outputs/m.joblib', 'tour.ipynb')).toBe('outputs/m.joblib');
    expect(kernelRelativePath('p/outputs/m.joblib', 'p/tour.ipynb')).toBe('outputs/m.joblib');
    expect(kernelRelativePath('models/m.joblib', 'p/q/tour.ipynb')).toBe('../../models/m.joblib');
    expect(kernelRelativePath('p/m.joblib', 'p/q/tour.ipynb')).toBe('../m.joblib');
  });
});

describe("the export form's default model path", () => {
  it("is the file browser's first selected file, not a folder or a notebook", () => {
    expect(
      modelFileSelection([
        { type: 'directory', path: 'outputs' },
        { type: 'notebook', path: 'tour.ipynb' },
        { type: 'file', path: 'outputs/churn_model.joblib' },
        { type: 'file', path: 'outputs/other.pt' }
      ])
    ).toBe('outputs/churn_model.joblib');
    expect(modelFileSelection([{ type: 'directory', path: 'outputs' }])).toBeNull();
    expect(modelFileSelection([])).toBeNull();
  });
});
