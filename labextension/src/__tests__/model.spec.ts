import {
  GuardrailsModel,
  allowedGlobals,
  datasetRows,
  pickleRows,
  piiFrames,
  policyReviews,
  reviewsWithoutFinding,
  verdictLabel
} from '../model';
import { IRecord } from '../tokens';

let n = 0;
function record(kind: string, data: { [key: string]: any }, extra: Partial<IRecord> = {}): IRecord {
  n += 1;
  return {
    schema: 'mlsecops.event/v1',
    id: `id-${n}`,
    kind,
    severity: 'info',
    time: '2026-11-26T11:46:39+00:00',
    session: 'S',
    cell: 3,
    who: {},
    summary: kind,
    data,
    ...extra
  };
}

function snapshot(records: IRecord[], on = true) {
  return {
    v: 1,
    type: 'snapshot',
    session: 'S',
    package_version: '0.1.0',
    identity: {
      user: 'alice',
      jupyterhub_user: null,
      host: 'h',
      kernel_id: 'k1',
      notebook: 'tour.ipynb',
      pid: 1,
      session_started: 't',
      display_name: 'alice@h'
    },
    policy: { source: 'mlsecops.toml', path: '/p/mlsecops.toml', errors: [] },
    audit: { path: '/a.sqlite3', status: 'ok' },
    guardrails: { on, names: ['pii', 'pickles', 'datasets'] },
    counts: {},
    records,
    records_left_out: 0
  };
}

describe('GuardrailsModel', () => {
  it('keeps one state per kernel and signals which one changed', () => {
    const model = new GuardrailsModel();
    const changed: string[] = [];
    model.changed.connect((_, id) => changed.push(id));
    model.setActive('k1');
    model.handleMessage('k1', snapshot([record('session.started', {})]));
    model.handleMessage('k2', snapshot([]));
    expect(changed).toEqual(['k1', 'k2']);
    expect(model.active?.status).toBe('on');
    expect(model.active?.identity?.display_name).toBe('alice@h');
    expect(model.state('k1')?.records).toHaveLength(1);
    expect(model.state('k2')?.records).toHaveLength(0);
  });

  it('appends events once, in order, and ignores another session', () => {
    const model = new GuardrailsModel();
    model.handleMessage('k1', snapshot([]));
    const read = record('dataset.read', { uri: 'file:///d/customers.csv' });
    model.handleMessage('k1', { v: 1, type: 'event', record: read });
    model.handleMessage('k1', { v: 1, type: 'event', record: read });
    model.handleMessage('k1', {
      v: 1,
      type: 'event',
      record: record('dataset.read', {}, { session: 'OTHER' })
    });
    expect(model.state('k1')?.records.map(r => r.id)).toEqual([read.id]);
  });

  it('a snapshot replaces what was known (after a reload of the extension)', () => {
    const model = new GuardrailsModel();
    model.handleMessage('k1', snapshot([record('a', {}), record('b', {})]));
    model.handleMessage('k1', snapshot([record('c', {})]));
    expect(model.state('k1')?.records.map(r => r.kind)).toEqual(['c']);
  });

  it('goes off with a reason and keeps what it showed', () => {
    const model = new GuardrailsModel();
    model.handleMessage('k1', snapshot([record('a', {})]));
    model.off('k1', 'the kernel restarted');
    const state = model.state('k1')!;
    expect(state.status).toBe('off');
    expect(state.reason).toBe('the kernel restarted');
    expect(state.guardrails?.on).toBe(false);
    expect(state.records).toHaveLength(1);
  });

  it('does not flicker to connecting while on', () => {
    const model = new GuardrailsModel();
    model.handleMessage('k1', snapshot([]));
    model.connecting('k1');
    expect(model.state('k1')?.status).toBe('on');
    model.connecting('k2');
    expect(model.state('k2')?.status).toBe('connecting');
  });

  it('session.ended turns the guardrails off and says why', () => {
    const model = new GuardrailsModel();
    model.handleMessage('k1', snapshot([record('dataset.read', {})]));
    model.handleMessage('k1', {
      v: 1,
      type: 'event',
      record: record('session.ended', { reason: 'unloaded' })
    });
    const state = model.state('k1')!;
    expect(state.guardrails?.on).toBe(false);
    expect(state.status).toBe('off');
    expect(state.reason).toBe('the guardrails were switched off (unloaded)');
    // What that session saw stays listed (under "guardrails off").
    expect(state.records.map(r => r.kind)).toEqual(['dataset.read', 'session.ended']);
  });

  it('a restart clears the kernel to "off": nothing of the old session is shown', () => {
    const model = new GuardrailsModel();
    model.setActive('k1');
    model.handleMessage('k1', snapshot([record('dataset.read', {}), record('pii.found', {})]));
    model.exportRequested('k1', 'req-1');
    model.reset('k1', 'the kernel restarted');
    const state = model.active!;
    expect(state.status).toBe('off');
    expect(state.reason).toBe('the kernel restarted');
    expect(state.records).toEqual([]);
    expect(state.identity).toBeNull();
    expect(state.guardrails).toBeNull();
    expect(state.export.status).toBe('idle');

    // Asking the new kernel, and hearing it has no channel yet, keeps the reason.
    model.connecting('k1');
    expect(model.active?.status).toBe('connecting');
    model.off('k1');
    expect(model.active?.reason).toBe('the kernel restarted');
    // Turned on again: a snapshot of the new session.
    model.handleMessage('k1', snapshot([record('session.started', {})]));
    expect(model.active?.status).toBe('on');
    expect(model.active?.reason).toBeNull();
  });

  it('matches export answers to the pending request', () => {
    const model = new GuardrailsModel();
    model.handleMessage('k1', snapshot([]));
    model.exportRequested('k1', 'req-1');
    model.handleMessage('k1', { v: 1, type: 'export_response', request_id: 'old', paths: ['x'] });
    expect(model.state('k1')?.export.status).toBe('pending');
    model.handleMessage('k1', {
      v: 1,
      type: 'export_response',
      request_id: 'req-1',
      paths: ['prov/a.intoto.json']
    });
    expect(model.state('k1')?.export).toEqual({
      status: 'done',
      requestId: 'req-1',
      paths: ['prov/a.intoto.json'],
      cwd: null,
      verified: null,
      verification: [],
      message: null
    });

    model.exportRequested('k1', 'req-2');
    model.handleMessage('k1', {
      v: 1,
      type: 'error',
      request_id: 'req-2',
      message: 'provenance export not available'
    });
    expect(model.state('k1')?.export.status).toBe('failed');
    expect(model.state('k1')?.export.message).toBe('provenance export not available');
  });

  it('keeps the verification the kernel reports with an export', () => {
    const model = new GuardrailsModel();
    model.handleMessage('k1', snapshot([]));
    model.exportRequested('k1', 'req-1');
    model.handleMessage('k1', {
      v: 1,
      type: 'export_response',
      request_id: 'req-1',
      paths: ['/srv/prov/a.intoto.json'],
      cwd: '/srv',
      verified: false,
      verification: ['OK   signature: valid', 'FAIL subject: a.joblib: sha256 differs']
    });
    const done = model.state('k1')?.export;
    expect(done?.status).toBe('done');
    expect(done?.cwd).toBe('/srv');
    expect(done?.verified).toBe(false);
    expect(done?.verification).toHaveLength(2);

    // A new request forgets the last answer's verification.
    model.exportRequested('k1', 'req-2');
    expect(model.state('k1')?.export.verified).toBeNull();
    expect(model.state('k1')?.export.verification).toEqual([]);
  });

  it('an error outside an export is shown as the last error', () => {
    const model = new GuardrailsModel();
    model.handleMessage('k1', snapshot([]));
    model.handleMessage('k1', { v: 1, type: 'error', message: 'unknown message type' });
    expect(model.state('k1')?.lastError).toBe('unknown message type');
    expect(model.handleMessage('k1', { v: 9, type: 'event' })).toBe(false);
    expect(model.state('k1')?.lastError).toContain('protocol v9');
  });

  it('forgets a kernel that went away', () => {
    const model = new GuardrailsModel();
    model.handleMessage('k1', snapshot([]));
    model.forget('k1');
    expect(model.state('k1')).toBeNull();
  });
});

describe('what the sections show', () => {
  it('datasets: reads, writes and blocks, with background digests folded in', () => {
    const read = record('dataset.read', {
      access_id: 'A',
      uri: 'file:///w/data/customers.csv',
      mode: 'read',
      reader: 'pandas.read_csv',
      sha256: null,
      hash_status: 'pending',
      rows: 400,
      columns: 15
    });
    const hashed = record('dataset.hashed', { access_id: 'A', sha256: 'abcdef0123456789' });
    const blocked = record('dataset.blocked', {
      uri: 'file:///w/data/customers.csv',
      mode: 'read',
      reader: 'pandas.read_csv',
      rule: 1,
      reason: 'record the purpose'
    });
    const rows = datasetRows([blocked, read, hashed]);
    expect(rows.map(r => [r.blocked, r.digest])).toEqual([
      [true, ''],
      [false, 'sha256 abcdef012345']
    ]);
    expect(rows[1].shape).toBe('400 × 15');
  });

  it('personal data: the latest report of each frame, columns and entities', () => {
    const first = record('pii.found', {
      variable: 'customers',
      library: 'pandas',
      rows: 400,
      columns: 15,
      findings: [{ column: 'email', entities: ['EMAIL_ADDRESS'], share: 1, examples: ['j***@e***.com'], action: 'warn' }]
    });
    const second = record('pii.found', {
      variable: 'customers',
      library: 'pandas',
      rows: 400,
      columns: 15,
      findings: [
        { column: 'email', entities: ['EMAIL_ADDRESS'], share: 1, examples: [], action: 'warn' },
        { column: 'iban', entities: ['IBAN_CODE'], share: 0.98, examples: [], action: 'block' }
      ]
    });
    const frames = piiFrames([first, second]);
    expect(frames).toHaveLength(1);
    expect(frames[0].columns.map(c => c.column)).toEqual(['email', 'iban']);
    expect(frames[0].columns[1].action).toBe('block');
  });

  it('pickles: blocks first, then unsafe files, warnings and scans', () => {
    const scanned = record('pickle.file_scanned', {
      path: 'outputs/shared_model.pkl',
      verdict: 'unsafe',
      globals: ['os:system']
    });
    const safe = record('pickle.scanned', { path: 'outputs/churn_model.joblib', verdict: 'safe', globals: [] });
    const blocked = record('pickle.blocked', {
      path: 'outputs/shared_model.pkl',
      globals: ['posix:system'],
      reason: 'runs shell commands',
      loader: 'pickle.load'
    });
    const rows = pickleRows([safe, scanned, blocked]);
    expect(rows.map(r => r.status)).toEqual(['blocked', 'scanned', 'safe']);
    expect(rows[0].globals).toEqual([{ name: 'posix:system', allowed: null }]);
  });
});

function pii(variable: string, columns: [string, string, string][], extra: { [key: string]: any } = {}) {
  return record(extra.kind ?? 'pii.found', {
    variable,
    aliases: extra.aliases ?? [],
    library: 'pandas',
    rows: 400,
    columns: 15,
    findings: columns.map(([column, entity, action]) => ({
      column,
      entities: [entity],
      share: 1,
      examples: [],
      action
    }))
  });
}

function review(
  column: string,
  verdict: 'false_positive' | 'accepted',
  variable: string | null,
  extra: { [key: string]: any } = {}
) {
  return record('review.pii', {
    variable,
    column,
    entities: ['PERSON'],
    verdict,
    scope: variable === null ? 'project' : 'variable',
    reason: extra.reason ?? `reason for ${column}`,
    policy_path: extra.policy_path ?? null
  });
}

describe('reviewed findings', () => {
  it('a reviewed column shows the verdict and reason instead of the plain finding', () => {
    const found = pii('customers', [
      ['email', 'EMAIL_ADDRESS', 'warn'],
      ['city', 'LOCATION', 'warn']
    ]);
    const reviewed = review('city', 'false_positive', 'customers', { reason: 'city names' });
    const [frame] = piiFrames([found, reviewed]);
    expect(frame.columns.map(c => [c.column, c.review?.verdict ?? null])).toEqual([
      ['email', null],
      ['city', 'false_positive']
    ]);
    expect(frame.columns[1].review?.reason).toBe('city names');
    expect(frame.columns[1].review?.policyPath).toBeNull();
    expect(verdictLabel('false_positive')).toBe('false positive');
    expect(verdictLabel('accepted')).toBe('accepted');
  });

  it('a variable review covers that frame (and its aliases) only; a project review every frame', () => {
    const customers = pii('customers', [['name', 'PERSON', 'warn']], { aliases: ['df'] });
    const staff = pii('staff', [['name', 'PERSON', 'warn']]);
    const onAlias = review('name', 'accepted', 'df');
    let frames = piiFrames([customers, staff, onAlias]);
    expect(frames.map(f => [f.variable, f.columns[0].review?.verdict ?? null])).toEqual([
      ['customers', 'accepted'],
      ['staff', null]
    ]);

    const everywhere = review('name', 'false_positive', null, { policy_path: '/p/mlsecops.toml' });
    frames = piiFrames([customers, staff, onAlias, everywhere]);
    // The latest review that covers a column wins.
    expect(frames.map(f => f.columns[0].review?.verdict)).toEqual([
      'false_positive',
      'false_positive'
    ]);
    expect(frames[1].columns[0].review?.scope).toBe('project');
    expect(frames[1].columns[0].review?.policyPath).toBe('/p/mlsecops.toml');
  });

  it('a reviewed column the scan leaves out of the next report stays shown, reviewed', () => {
    const first = pii('customers', [
      ['email', 'EMAIL_ADDRESS', 'warn'],
      ['city', 'LOCATION', 'warn']
    ]);
    const reviewed = review('city', 'false_positive', 'customers');
    const again = pii('customers', [['email', 'EMAIL_ADDRESS', 'warn']]);
    const [frame] = piiFrames([first, reviewed, again]);
    expect(frame.key).toBe(again.id);
    expect(frame.columns.map(c => [c.column, c.review?.verdict ?? null])).toEqual([
      ['email', null],
      ['city', 'false_positive']
    ]);

    // Without a review, a column missing from the new report is gone (the frame changed).
    const [unreviewed] = piiFrames([first, again]);
    expect(unreviewed.columns.map(c => c.column)).toEqual(['email']);
  });

  it('a blocked frame whose blocked columns were all reviewed no longer stands out', () => {
    const blocked = pii('customers', [['iban', 'IBAN_CODE', 'block']], { kind: 'pii.blocked' });
    expect(piiFrames([blocked])[0].blocked).toBe(true);
    const accepted = review('iban', 'accepted', 'customers');
    expect(piiFrames([blocked, accepted])[0].blocked).toBe(false);
  });

  it('reviews covering no shown column are listed on their own, the latest of each', () => {
    const found = pii('customers', [['email', 'EMAIL_ADDRESS', 'warn']]);
    const onShown = review('email', 'accepted', 'customers');
    const elsewhere = review('notes', 'accepted', null, { reason: 'first' });
    const elsewhereAgain = review('notes', 'false_positive', null, { reason: 'second' });
    const records = [found, onShown, elsewhere, elsewhereAgain];
    const others = reviewsWithoutFinding(records, piiFrames(records));
    expect(others.map(r => [r.column, r.verdict, r.reason])).toEqual([
      ['notes', 'false_positive', 'second']
    ]);
  });
});

describe('reviews kept in the policy file', () => {
  const inFile = {
    column: 'email',
    variable: 'customers',
    verdict: 'false_positive',
    scope: 'variable',
    reason: 'synthetic test addresses',
    policy_path: '/p/mlsecops.toml'
  };
  const everyFrame = {
    column: 'loyalty_code',
    variable: null,
    verdict: 'accepted',
    reason: 'pseudonymous codes',
    policy_path: '/p/mlsecops.toml'
  };

  it('come with the snapshot; a kernel that sends none gives none', () => {
    const model = new GuardrailsModel();
    model.handleMessage('k1', { ...snapshot([]), policy_reviews: [inFile] });
    expect(model.state('k1')?.policyReviews).toEqual([inFile]);
    model.handleMessage('k1', snapshot([]));
    expect(model.state('k1')?.policyReviews).toEqual([]);
  });

  it('show the columns the scan no longer reports as reviewed, from the policy file', () => {
    const fromPolicy = policyReviews([inFile, everyFrame]);
    expect(fromPolicy.map(r => [r.source, r.scope, r.cell])).toEqual([
      ['policy', 'variable', null],
      ['policy', 'project', null]
    ]);
    // The scan left email out: the frame reports phone only.
    const found = pii('customers', [['phone', 'PHONE_NUMBER', 'warn']]);
    const frames = piiFrames([found], fromPolicy);
    expect(frames[0].columns.map(c => [c.column, c.review])).toEqual([['phone', null]]);
    const others = reviewsWithoutFinding([found], frames, fromPolicy);
    expect(others.map(r => [r.variable, r.column, r.verdict, r.source, r.policyPath])).toEqual([
      ['customers', 'email', 'false_positive', 'policy', '/p/mlsecops.toml'],
      [null, 'loyalty_code', 'accepted', 'policy', '/p/mlsecops.toml']
    ]);
  });

  it('cover a reported column like a review of the session, which wins over them', () => {
    const fromPolicy = policyReviews([{ ...everyFrame, column: 'phone' }]);
    const found = pii('customers', [['phone', 'PHONE_NUMBER', 'warn']]);
    let [frame] = piiFrames([found], fromPolicy);
    expect(frame.columns[0].review?.source).toBe('policy');
    expect(reviewsWithoutFinding([found], [frame], fromPolicy)).toEqual([]);

    const now = review('phone', 'false_positive', 'customers', { reason: 'fake numbers' });
    [frame] = piiFrames([found, now], fromPolicy);
    expect(frame.columns[0].review?.source).toBe('session');
    expect(frame.columns[0].review?.reason).toBe('fake numbers');
    // The policy file's verdict on that column is replaced, not listed apart.
    const elsewhere = review('loyalty_code', 'false_positive', null, { reason: 'second' });
    const others = reviewsWithoutFinding(
      [found, elsewhere],
      piiFrames([found, elsewhere], policyReviews([everyFrame])),
      policyReviews([everyFrame])
    );
    expect(others.map(r => [r.column, r.source, r.reason])).toEqual([
      ['loyalty_code', 'session', 'second']
    ]);
  });
});

describe('allowed pickle globals', () => {
  function allowed(qualified: string, dangerous: boolean, scope: 'session' | 'policy') {
    return record('review.pickle_allowed', {
      qualified,
      dangerous,
      scope,
      reason: `trust ${qualified}`,
      policy_path: scope === 'policy' ? '/p/mlsecops.toml' : null
    });
  }

  it('each global of a load says whether (and how) it was allowed since', () => {
    const blocked = record('pickle.blocked', {
      path: 'outputs/shared_model.pkl',
      globals: ['posix:system', 'collections:OrderedDict'],
      reason: 'runs shell commands'
    });
    const rows = pickleRows([
      blocked,
      allowed('collections:OrderedDict', false, 'session'),
      allowed('posix:system', true, 'policy')
    ]);
    expect(rows[0].status).toBe('blocked');
    expect(
      rows[0].globals.map(g => [g.name, g.allowed?.scope ?? null, g.allowed?.dangerous ?? null])
    ).toEqual([
      ['posix:system', 'policy', true],
      ['collections:OrderedDict', 'session', false]
    ]);
  });

  it('lists each allowed global once, as last allowed', () => {
    const list = allowedGlobals([
      allowed('numpy.core.multiarray:_reconstruct', false, 'session'),
      allowed('builtins:eval', true, 'session'),
      allowed('numpy.core.multiarray:_reconstruct', false, 'policy')
    ]);
    expect(list.map(a => [a.qualified, a.scope, a.dangerous])).toEqual([
      ['builtins:eval', 'session', true],
      ['numpy.core.multiarray:_reconstruct', 'policy', false]
    ]);
    expect(list[1].policyPath).toBe('/p/mlsecops.toml');
    expect(allowedGlobals([record('pickle.blocked', {})])).toEqual([]);
  });
});
