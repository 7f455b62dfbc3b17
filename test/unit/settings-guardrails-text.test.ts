/**
 * The guardrails editor's text handling on its own: what is cut out of flightlog.yaml, what is
 * spliced back (every other byte kept), and errors located in the edited text.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocument } from 'yaml';
import { ConfigError } from '../../gateway/core/errors';
import { validateConfig } from '../../gateway/config/load';
import { checkGuardrailsText, guardrailsText, spliceGuardrails } from '../../gateway/settings/guardrails-text';

const FILE = [
  '# top',
  'connections: [] # none yet',
  '# the rules',
  'guardrails:',
  '  - name: a # first',
  '    match: { text: "^drop" }',
  '    action: deny',
  '# after',
  'recording: { headRows: 10 }',
  '',
].join('\n');

const RULE = 'guardrails:\n  # new\n  - name: b\n    match: { kind: shell }\n    action: hold\n    timeout: 5m\n';

function splice(file: string, rules: string): string {
  return spliceGuardrails(file, parseDocument(file), rules);
}

describe('guardrails editor text', () => {
  it('cuts out the guardrails: key as written, comments on its lines kept', () => {
    assert.equal(guardrailsText(FILE, parseDocument(FILE)), 'guardrails:\n  - name: a # first\n    match: { text: "^drop" }\n    action: deny\n');
    assert.equal(guardrailsText('connections: []\n', parseDocument('connections: []\n')), null);
  });

  it('splices new rules in place: every other line byte for byte, and the result validates to the rules given', () => {
    const out = splice(FILE, RULE);
    assert.equal(out, FILE.replace('guardrails:\n  - name: a # first\n    match: { text: "^drop" }\n    action: deny\n', RULE));
    const config = validateConfig(parseDocument(out).toJS(), 'f.yaml');
    assert.deepEqual(config.guardrails, checkGuardrailsText(RULE));
    assert.equal(config.recording.headRows, 10);
  });

  it('appends to a file without rules, and an empty editor removes them', () => {
    assert.equal(splice('connections: []', RULE), `connections: []\n${RULE}`);
    const removed = splice(FILE, '');
    assert.ok(!removed.includes('guardrails'));
    assert.ok(removed.includes('# after\nrecording: { headRows: 10 }'));
    assert.equal(validateConfig(parseDocument(removed).toJS(), 'f.yaml').guardrails.length, 0);
  });

  it('handles a flow-style root map through the Document API', () => {
    const flow = '{ connections: [], guardrails: [] }\n';
    const out = splice(flow, RULE);
    assert.deepEqual(validateConfig(parseDocument(out).toJS(), 'f.yaml').guardrails.map((r) => r.name), ['b']);
    assert.match(guardrailsText(out, parseDocument(out)) ?? '', /name: b/);
  });

  it('locates errors in the edited text: path and line', () => {
    const cases: Array<[string, number | undefined, string, RegExp]> = [
      ['guardrails:\n  - name: x\n    match: { sql: { statement: nuke } }\n    action: deny\n', 3, 'guardrails[0].match.sql.statement', /expected one of .*got "nuke"/],
      ['guardrails:\n  - name: x\n    match: { kind: sql }\n    action: deny\n  - name: x\n    match: { kind: sql }\n    action: deny\n', 5, 'guardrails[1].name', /duplicate rule name "x"/],
      ['recording: {}\n', 1, 'recording', /unknown key/],
      ['guardrails: [\n', 2, '', /not valid YAML/],
    ];
    for (const [text, line, p, expected] of cases) {
      assert.throws(
        () => checkGuardrailsText(text),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, text);
          assert.equal(err.line, line, text);
          assert.equal(err.docPath, p, text);
          assert.match(err.expected, expected, text);
          return true;
        },
      );
    }
    assert.deepEqual(checkGuardrailsText('# nothing\n'), []);
    assert.deepEqual(checkGuardrailsText('guardrails:\n'), []);
  });
});
