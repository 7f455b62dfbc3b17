/**
 * A tiny element builder for the report page. Recorded content is hostile (HTML in bodies,
 * escape sequences, huge lines): strings only ever become text nodes, never markup.
 */

type Child = Node | string | number | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return e;
}

/** A value as indented JSON text (for results and details), cut to a readable length. */
export function jsonText(v: unknown, max = 20000): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v, null, 2) ?? '';
  return s.length > max ? `${s.slice(0, max)}\n… (${s.length - max} more characters in the embedded member)` : s;
}
