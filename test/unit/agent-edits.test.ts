/** The code an agent wrote: Edit/MultiEdit/Write and apply_patch tool calls read from recorded model replies. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { agentEdits, parseApplyPatch } from '../../gateway/store/agent-edits';
import { openDb } from '../../gateway/store/db';
import { Recorder } from '../../gateway/store/recorder';
import { ensureFingerprintKey, ensureGatewayKey } from '../../gateway/store/chain';
import { createMasker } from '../../gateway/masking';
import { blame } from '../../gateway/store/blame';
import { runTimeline } from '../../gateway/store/runs';
import { tempDir } from '../helpers/tmp';

const call = (name: string, a: unknown) => ({ id: 'x', name, arguments: JSON.stringify(a) });

test('Claude Code Edit, MultiEdit and Write become before/after per file', () => {
  assert.deepEqual(
    agentEdits([
      call('Edit', { file_path: '/src/app.ts', old_string: 'const n = 1;', new_string: 'const n = 2;' }),
      call('MultiEdit', { file_path: '/src/b.ts', edits: [{ old_string: 'a', new_string: 'b' }, { old_string: 'c', new_string: 'd' }] }),
      call('Write', { file_path: '/src/new.ts', content: 'export {};\n' }),
      call('Bash', { command: 'ls' }),
      { id: 'y', name: 'Edit', arguments: '{not json' },
    ]),
    [
      { tool: 'Edit', path: '/src/app.ts', before: 'const n = 1;', after: 'const n = 2;' },
      { tool: 'MultiEdit', path: '/src/b.ts', before: 'a', after: 'b' },
      { tool: 'MultiEdit', path: '/src/b.ts', before: 'c', after: 'd' },
      { tool: 'Write', path: '/src/new.ts', before: null, after: 'export {};\n' },
    ],
  );
});

test('OpenAI apply_patch: add, update and delete sections, as a string or {input}, and the Responses operation form', () => {
  const patch = ['*** Begin Patch', '*** Update File: src/app.py', '@@ def main():', ' x = 1', '-print(x)', '+print(x + 1)', '*** Add File: src/new.py', '+VALUE = 3', '*** Delete File: old.py', '*** End Patch'].join('\n');
  const want = [
    { tool: 'apply_patch', path: 'src/app.py', before: 'x = 1\nprint(x)', after: 'x = 1\nprint(x + 1)' },
    { tool: 'apply_patch', path: 'src/new.py', before: null, after: 'VALUE = 3' },
    { tool: 'apply_patch', path: 'old.py', before: '', after: null },
  ];
  assert.deepEqual(parseApplyPatch(patch), want);
  assert.deepEqual(agentEdits([call('apply_patch', { input: patch })]), want);
  assert.deepEqual(agentEdits([{ id: 'z', name: 'apply_patch', arguments: patch }]), want);
  assert.deepEqual(agentEdits([call('apply_patch', { operation: { type: 'update_file', path: 'a.txt', diff: '@@\n-old\n+new' } })]), [{ tool: 'apply_patch', path: 'a.txt', before: 'old', after: 'new' }]);
});

test('a recorded edit is in the run timeline and blames file:local:PATH, masked like everything else', async () => {
  const dir = tempDir('flightlog-agent-edits-');
  const SECRET = 'AKIA' + 'Z7QW2ER4TY6UI8OP';
  try {
    const db = openDb(dir);
    const key = ensureGatewayKey(dir);
    const rec = new Recorder(db, { masker: createMasker({ fingerprintKey: ensureFingerprintKey(dir) }), signingKey: key.privateKey, keyFingerprint: key.fingerprint });
    const s = rec.openSession({ connection: 'model', protocol: 'http', identity: 'claude', runId: 'run_e' });
    s.startCommand({ kind: 'llm', text: 'claude: fix the config' }).finish({
      status: 'ok',
      result: { toolCalls: [call('Edit', { file_path: '/repo/config.ts', old_string: 'workers: 2', new_string: `workers: 8, key: '${SECRET}'` })] },
    });
    s.startCommand({ kind: 'llm', text: 'claude: and the docs' }).finish({ status: 'ok', result: { toolCalls: [call('Write', { file_path: '/repo/README.md', content: '# hi\n' })] } });
    s.close();
    await rec.flush();
    const r = blame(db, 'file:local:/repo/config.ts');
    assert.equal(r.entries.length, 1);
    const [e] = r.entries;
    assert.equal(e.text, 'Edit /repo/config.ts');
    assert.equal(e.access, 'write');
    assert.equal(e.cause?.text, 'claude: fix the config');
    assert.equal(e.change?.before, 'workers: 2');
    assert.match(e.change?.after ?? '', /workers: 8/);
    assert.doesNotMatch(JSON.stringify(r), new RegExp(SECRET), 'the edit is shown masked');
    const t = runTimeline(db, 'run_e');
    const edits = t.steps.flatMap((x) => (x.type === 'command' ? (x.edits ?? []) : []));
    assert.deepEqual(edits.map((x) => [x.tool, x.path]), [['Edit', '/repo/config.ts'], ['Write', '/repo/README.md']]);
    assert.equal(blame(db, 'file:local:/repo/other.ts').entries.length, 0);
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
