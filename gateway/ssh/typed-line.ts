/**
 * Rebuilds the line an agent is typing into a shell from its keystrokes alone, so the line can
 * be decided before its Enter reaches the host (the echo arrives too late: keys piped or sent
 * ahead come in one chunk). Plain emacs-mode editing keys are followed exactly; keys whose
 * effect depends on the shell's state (history, completion, search, yank) make the line
 * inexact, and the caller then also consults the echo. Pure: no Node imports, no I/O.
 */

export interface TypedLineResult {
  text: string;
  /** false once a key whose effect only the shell knows was typed */
  exact: boolean;
}

/** Beyond this, keys are dropped from the rebuilt line (the echo still has them). */
const MAX_TYPED = 16 * 1024;

type KeyState = 'text' | 'esc' | 'csi' | 'ss3';

export class TypedLine {
  private chars: string[] = [];
  private cursor = 0;
  private exact = true;
  private state: KeyState = 'text';
  private seq = '';
  /** inside a bracketed paste: every key is literal text */
  private pasting = false;

  /** One key (or character of an escape sequence). Returns the finished line on Enter. */
  key(ch: string): TypedLineResult | null {
    switch (this.state) {
      case 'esc':
        if (ch === '[') {
          this.state = 'csi';
          this.seq = '';
        } else if (ch === 'O') {
          this.state = 'ss3';
        } else {
          // Alt-key: word motions and edits the shell applies its own way
          this.state = 'text';
          this.exact = false;
        }
        return null;
      case 'ss3':
        this.state = 'text';
        this.cursorKey(ch);
        return null;
      case 'csi':
        if (ch >= '@' && ch <= '~') {
          this.state = 'text';
          this.csi(this.seq, ch);
        } else if (this.seq.length < 16) {
          this.seq += ch;
        }
        return null;
      case 'text':
        break;
    }
    if (ch === '\r' || ch === '\n') {
      const done = { text: this.chars.join(''), exact: this.exact };
      const pasting = this.pasting;
      this.reset();
      this.pasting = pasting;
      return done;
    }
    if (ch === '\x1b') {
      this.state = 'esc';
      return null;
    }
    if (this.pasting || ch >= ' ') {
      if (ch === '\x7f' && !this.pasting) return this.backspace(), null;
      if (this.chars.length < MAX_TYPED) this.chars.splice(this.cursor++, 0, ch);
      return null;
    }
    switch (ch) {
      case '\b':
        this.backspace();
        return null;
      case '\x01': // Ctrl-A
        this.cursor = 0;
        return null;
      case '\x05': // Ctrl-E
        this.cursor = this.chars.length;
        return null;
      case '\x02': // Ctrl-B
        this.cursor = Math.max(0, this.cursor - 1);
        return null;
      case '\x06': // Ctrl-F
        this.cursor = Math.min(this.chars.length, this.cursor + 1);
        return null;
      case '\x04': // Ctrl-D on a non-empty line deletes under the cursor
        this.chars.splice(this.cursor, 1);
        return null;
      case '\x0b': // Ctrl-K
        this.chars.length = this.cursor;
        return null;
      case '\x15': // Ctrl-U
        this.chars.splice(0, this.cursor);
        this.cursor = 0;
        return null;
      case '\x17': {
        // Ctrl-W: back over blanks, then over the word
        let i = this.cursor;
        while (i > 0 && /\s/.test(this.chars[i - 1])) i--;
        while (i > 0 && !/\s/.test(this.chars[i - 1])) i--;
        this.chars.splice(i, this.cursor - i);
        this.cursor = i;
        return null;
      }
      case '\x03': // Ctrl-C abandons the line
        this.reset();
        return null;
      case '\x0c': // Ctrl-L redraws
        return null;
      default:
        // Tab (completion), Ctrl-R (search), Ctrl-Y (yank), Ctrl-P/N (history), Ctrl-T, …
        this.exact = false;
        return null;
    }
  }

  private backspace(): void {
    if (this.cursor === 0) return;
    this.chars.splice(--this.cursor, 1);
  }

  private cursorKey(final: string): boolean {
    switch (final) {
      case 'D':
        this.cursor = Math.max(0, this.cursor - 1);
        return true;
      case 'C':
        this.cursor = Math.min(this.chars.length, this.cursor + 1);
        return true;
      case 'H':
        this.cursor = 0;
        return true;
      case 'F':
        this.cursor = this.chars.length;
        return true;
      default:
        // Up/Down: history
        this.exact = false;
        return false;
    }
  }

  private csi(params: string, final: string): void {
    if (final === '~') {
      if (params === '200') this.pasting = true;
      else if (params === '201') this.pasting = false;
      else if (params === '3') this.chars.splice(this.cursor, 1);
      else if (params === '1' || params === '7') this.cursor = 0;
      else if (params === '4' || params === '8') this.cursor = this.chars.length;
      else this.exact = false;
      return;
    }
    // modified arrows (`1;5D`: Ctrl-Left) move by words the shell's way
    if (params !== '') this.exact = false;
    else this.cursorKey(final);
  }

  /** Enter was typed in a way that did not submit this line (the gateway discarded it). */
  reset(): void {
    this.chars = [];
    this.cursor = 0;
    this.exact = true;
    this.state = 'text';
    this.pasting = false;
  }
}
