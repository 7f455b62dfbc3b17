/**
 * The typed line the gateway decides on Enter: rebuilt from keystrokes exactly where the keys
 * tell (plain typing, emacs editing keys, arrows), flagged inexact where only the shell knows.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TypedLine, type TypedLineResult } from '../../gateway/ssh/typed-line';

function lines(keys: string): TypedLineResult[] {
  const t = new TypedLine();
  const out: TypedLineResult[] = [];
  for (const k of keys) {
    const r = t.key(k);
    if (r) out.push(r);
  }
  return out;
}

describe('TypedLine', () => {
  it('splits piped input at every Enter, CR or LF', () => {
    assert.deepEqual(lines('mkdir x; echo ok1\nrm -rf x\r\recho ok2\n'), [
      { text: 'mkdir x; echo ok1', exact: true },
      { text: 'rm -rf x', exact: true },
      { text: '', exact: true },
      { text: 'echo ok2', exact: true },
    ]);
  });

  it('follows backspace, Ctrl-U, Ctrl-W, Ctrl-K, Ctrl-A/E and arrow keys', () => {
    assert.deepEqual(lines('rm -rf xx\x7f\x7fy\r'), [{ text: 'rm -rf y', exact: true }]);
    assert.deepEqual(lines('echo hi\x15ls\r'), [{ text: 'ls', exact: true }]);
    assert.deepEqual(lines('echo foo bar\x17baz\r'), [{ text: 'echo foo baz', exact: true }]);
    // `-rf x` typed, then `rm ` inserted at the start
    assert.deepEqual(lines('-rf x\x01rm \r'), [{ text: 'rm -rf x', exact: true }]);
    assert.deepEqual(lines('rf x\x1b[D\x1b[D\x1b[D\x1b[D-\x05 y\r'), [{ text: '-rf x y', exact: true }]);
    assert.deepEqual(lines('abc\x1bOD\x1bOD\x0b\r'), [{ text: 'a', exact: true }]);
    assert.deepEqual(lines('abc\x01\x1b[3~\r'), [{ text: 'bc', exact: true }]);
  });

  it('Ctrl-C abandons the line', () => {
    assert.deepEqual(lines('rm -rf x\x03ls\r'), [{ text: 'ls', exact: true }]);
  });

  it('history, completion, search and Alt keys make the line inexact', () => {
    for (const keys of ['\x1b[A\r', 'rm -rf /tm\t\r', '\x12rm\r', 'x\x1bb\r', 'a\x1b[1;5D\r']) {
      assert.equal(lines(keys)[0].exact, false, JSON.stringify(keys));
    }
    // the next line starts exact again
    assert.equal(lines('\x1b[A\rls\r')[1].exact, true);
  });

  it('bracketed paste is literal text', () => {
    assert.deepEqual(lines('\x1b[200~rm\x15 -rf x\x1b[201~\r'), [{ text: 'rm\x15 -rf x', exact: true }]);
  });

  it('plain printable typing is rebuilt verbatim, whatever its content', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom(...'abc -/;|&$"\'xyz'.split('')) }), { maxLength: 5 }), (ls) => {
        const got = lines(ls.map((l) => `${l}\n`).join(''));
        assert.deepEqual(
          got.map((r) => r.text),
          ls,
        );
        assert.ok(got.every((r) => r.exact));
      }),
    );
  });
});
