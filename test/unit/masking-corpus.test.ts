import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createMasker } from '../../gateway/masking';

/** The repo root is the nearest parent with package.json (tests run from <outDir>/test/unit). */
function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(__dirname, '..', '..', '..');
    dir = up;
  }
}

const sharedCorpus = path.resolve(repoRoot(), '..', 'shared', 'corpus', 'secrets.jsonl');
/** The project's own records: credentials named only by their context, references, placeholders, public keys. */
const projectCorpus = path.resolve(repoRoot(), 'test', 'fixtures', 'secrets-context.jsonl');

interface CorpusRecord {
  id: string;
  context: string;
  text: string;
  secrets: Array<{ kind: string; value: string }>;
}

/** Masks every record; prints and returns recall (secrets no longer in the text) and false positives (clean texts changed). */
function score(name: string, file: string): { recall: number; fpRate: number; line: string } {
  const records = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as CorpusRecord);
  const masker = createMasker({ fingerprintKey: new Uint8Array(32).fill(42) });
  let secrets = 0;
  let caught = 0;
  let negatives = 0;
  let changed = 0;
  const missedKinds = new Map<string, number>();
  const changedIds: string[] = [];
  for (const r of records) {
    const masked = masker.maskText(r.text).text;
    if (r.secrets.length === 0) {
      negatives++;
      if (masked !== r.text) {
        changed++;
        changedIds.push(r.id);
      }
      continue;
    }
    for (const s of r.secrets) {
      secrets++;
      if (!masked.includes(s.value)) caught++;
      else missedKinds.set(s.kind, (missedKinds.get(s.kind) ?? 0) + 1);
    }
  }
  const recall = caught / secrets;
  const fpRate = negatives === 0 ? 0 : changed / negatives;
  const line = `${name}: ${records.length} records; recall ${(recall * 100).toFixed(2)}% (${caught}/${secrets}); false positives ${(fpRate * 100).toFixed(2)}% (${changed}/${negatives})`;
  console.log(line);
  if (missedKinds.size > 0) console.log(`  missed by kind: ${[...missedKinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  if (changedIds.length > 0) console.log(`  changed clean records: ${changedIds.join(', ')}`);
  return { recall, fpRate, line };
}

test('labelled corpora: recall >= 99%, false positives <= 2%, on the shared corpus and the project corpus', (t) => {
  assert.ok(fs.existsSync(projectCorpus), `project corpus missing at ${projectCorpus}`);
  for (const [name, file] of [['shared corpus', sharedCorpus], ['project corpus', projectCorpus]]) {
    if (!fs.existsSync(file)) {
      t.diagnostic(`${name} not found at ${file}: skipped`);
      continue;
    }
    const { recall, fpRate, line } = score(name, file);
    t.diagnostic(line);
    assert.ok(recall >= 0.99, line);
    assert.ok(fpRate <= 0.02, line);
  }
});
