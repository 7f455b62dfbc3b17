/**
 * Strips the terminal control strings a replay must never act on: OSC (window titles,
 * hyperlinks, OSC 52 clipboard writes, palette changes), DCS, APC, PM and SOS, in their 7-bit
 * (ESC ]) and 8-bit (U+009D) forms. Recorded output is hostile, so a replayed session shows
 * text and colours and can neither touch the clipboard nor open a link.
 * Pure and stateful across chunks (a sequence may be split between two events); no Node or DOM.
 */

const ESC = 0x1b;
const BEL = 0x07;
/** 8-bit C1 introducers of control strings: DCS, SOS, OSC, PM, APC */
const C1_STRING = new Set([0x90, 0x98, 0x9d, 0x9e, 0x9f]);
/** 7-bit finals after ESC that open a control string: P (DCS), X (SOS), ] (OSC), ^ (PM), _ (APC) */
const ESC_STRING = new Set([0x50, 0x58, 0x5d, 0x5e, 0x5f]);
const ST_8BIT = 0x9c;

type State = 'ground' | 'esc' | 'string' | 'string-esc';

export class TerminalFilter {
  private state: State = 'ground';
  /** control strings dropped so far (for tests and a reviewer's note) */
  dropped = 0;

  /** Returns the part of `chunk` that is safe to write to a terminal emulator. */
  push(chunk: string): string {
    let out = '';
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      switch (this.state) {
        case 'ground':
          if (c === ESC) {
            out += chunk.slice(start, i);
            start = i + 1;
            this.state = 'esc';
          } else if (C1_STRING.has(c)) {
            out += chunk.slice(start, i);
            start = i + 1;
            this.state = 'string';
            this.dropped++;
          }
          break;
        case 'esc':
          if (ESC_STRING.has(c)) {
            this.state = 'string';
            this.dropped++;
            start = i + 1;
          } else if (c === ESC) {
            out += '\x1b';
            start = i + 1;
          } else {
            out += '\x1b';
            start = i;
            this.state = 'ground';
          }
          break;
        case 'string':
          if (c === BEL || c === ST_8BIT) {
            this.state = 'ground';
            start = i + 1;
          } else if (c === ESC) {
            this.state = 'string-esc';
          }
          break;
        case 'string-esc':
          if (c === 0x5c /* \ : ST */) {
            this.state = 'ground';
            start = i + 1;
          } else if (c === ESC) {
            this.state = 'string-esc';
          } else {
            // ESC + anything else aborts the string and starts a new escape sequence.
            this.state = 'esc';
            i--;
          }
          break;
      }
    }
    if (this.state === 'ground') out += chunk.slice(start);
    return out;
  }

  reset(): void {
    this.state = 'ground';
  }
}

/** One-shot form for a complete text. */
export function filterTerminalText(text: string): string {
  return new TerminalFilter().push(text);
}
