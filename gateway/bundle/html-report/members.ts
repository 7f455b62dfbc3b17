/**
 * Reading the bundle members a report embeds. Each member is one or more consecutive
 * `<script type="application/json|text/plain" data-member="NAME">` blocks: the exporter cuts a
 * member's text right after the `<` of every `</script` and `<!--` (the only sequences that could
 * end or confuse an HTML script block), and nothing else is changed, so joining the blocks of a
 * member in document order gives back its exact bytes. Runs in the browser; no DOM writes here.
 */

export interface EmbeddedMember {
  name: string;
  text: string;
  bytes: Uint8Array;
}

/** The members in archive order (the order of their first block). */
export function readEmbeddedMembers(doc: Document): EmbeddedMember[] {
  const parts = new Map<string, string[]>();
  for (const el of Array.from(doc.querySelectorAll('script[data-member]'))) {
    const name = el.getAttribute('data-member') ?? '';
    let list = parts.get(name);
    if (!list) parts.set(name, (list = []));
    list.push(el.textContent ?? '');
  }
  const enc = new TextEncoder();
  return [...parts].map(([name, list]) => {
    const text = list.join('');
    return { name, text, bytes: enc.encode(text) };
  });
}
