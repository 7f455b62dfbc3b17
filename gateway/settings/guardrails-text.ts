/**
 * The `guardrails:` key of flightlog.yaml as text Settings can edit: cut out of the file as the
 * user wrote it (comments kept), checked on its own so errors point at lines of the edited text,
 * and spliced back so every other byte of the file stays as it was.
 */
import { LineCounter, isMap, isScalar, parseDocument, type Document, type Pair } from 'yaml';
import { ConfigError } from '../core/errors';
import { Checker } from '../config/load';
import { checkGuardrails } from '../config/guardrails';
import type { GuardrailRule } from '../policy/rules';

/** Where the `guardrails:` key and its value sit in the file: [start, end) offsets, end past the line's newline. */
function guardrailsSpan(text: string, doc: Document): { start: number; end: number } | null {
  if (!isMap(doc.contents) || doc.contents.flow) return null;
  const pair = doc.contents.items.find((p) => isScalar(p.key) && p.key.value === 'guardrails') as Pair<{ range?: [number, number, number] }, { range?: [number, number, number] } | null> | undefined;
  if (!pair?.key?.range) return null;
  const start = text.lastIndexOf('\n', pair.key.range[0] - 1) + 1;
  // the value's end, then the rest of that line (a trailing `# comment` belongs to the rules)
  const valueEnd = pair.value?.range ? pair.value.range[1] : pair.key.range[1];
  const nl = text.indexOf('\n', valueEnd === 0 ? 0 : valueEnd - 1);
  return { start, end: nl < 0 ? text.length : nl + 1 };
}

/** The rules as written in the file (comments kept), or null when the file has no `guardrails:` key. */
export function guardrailsText(fileText: string, doc: Document): string | null {
  const span = guardrailsSpan(fileText, doc);
  if (!span) {
    const node = doc.get('guardrails', true);
    if (node === undefined) return null;
    // a flow-style root map: no lines of its own to cut out, so write the rules out afresh
    const out = parseDocument('{}');
    out.set('guardrails', node);
    return out.toString({ lineWidth: 0 });
  }
  return fileText.slice(span.start, span.end);
}

/**
 * Checks edited rules with the config's own validator. `text` is a YAML mapping with the one key
 * `guardrails` (or nothing: no rules). Errors name the path and the line within `text`.
 */
export function checkGuardrailsText(text: string): GuardrailRule[] {
  const label = 'guardrails';
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new ConfigError(label, '', `not valid YAML: ${e.message.split('\n')[0]}`, e.linePos?.[0]?.line ?? lines.linePos(e.pos[0]).line);
  }
  const c = new Checker(label, doc, lines);
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) return [];
  const root = c.object(raw, [], 'a mapping with the one key guardrails: (a list of rules)');
  c.keys(root, [], ['guardrails']);
  return checkGuardrails(c, root.guardrails);
}

/** The file text with its `guardrails:` key replaced by `rules` (appended when the file has none). */
export function spliceGuardrails(fileText: string, doc: Document, rules: string): string {
  const block = rules.trim() === '' ? '' : rules.replace(/\s*$/, '\n');
  const span = guardrailsSpan(fileText, doc);
  if (span) return fileText.slice(0, span.start) + block + fileText.slice(span.end);
  if (doc.get('guardrails', true) !== undefined || (doc.contents && isMap(doc.contents) && doc.contents.flow)) {
    // flow-style root: go through the Document API (the file's layout cannot be kept anyway)
    const edited = parseDocument(fileText);
    const given = parseDocument(block || '{}');
    if (given.get('guardrails', true) === undefined) edited.delete('guardrails');
    else edited.set('guardrails', given.get('guardrails', true));
    return edited.toString({ lineWidth: 0 });
  }
  if (!block) return fileText;
  const sep = fileText === '' || fileText.endsWith('\n') ? '' : '\n';
  return fileText + sep + block;
}
