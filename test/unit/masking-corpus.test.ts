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

const corpusPath = path.resolve(repoRoot(), '..', 'shared', 'corpus', 'secrets.jsonl');

interface CorpusRecord {
  id: string;
  context: string;
  text: string;
  secrets: Array<{ kind: string; value: string }>;
}

test('labelled corpus: recall >= 99%, false positives <= 2%', (t) => {
  if (!fs.existsSync(corpusPath)) {
    t.skip(`corpus not found at ${corpusPath}`);
    return;
  }
  const records = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as CorpusRecord);
  const masker = createMasker({ fingerprintKey: new Uint8Array(32).fill(42) });
  let secrets = 0;
  let caught = 0;
  let negatives = 0;
  let changed = 0;
  const missedKinds = new Map<string, number>();
  for (const r of records) {
    const masked = masker.maskText(r.text).text;
    if (r.secrets.length === 0) {
      negatives++;
      if (masked !== r.text) changed++;
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
  const line = `corpus: ${records.length} records; recall ${(recall * 100).toFixed(2)}% (${caught}/${secrets}); false positives ${(fpRate * 100).toFixed(2)}% (${changed}/${negatives})`;
  t.diagnostic(line);
  console.log(line);
  if (missedKinds.size > 0) console.log(`missed by kind: ${[...missedKinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  assert.ok(recall >= 0.99, line);
  assert.ok(fpRate <= 0.02, line);
});
