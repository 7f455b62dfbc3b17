/**
 * Reconstructs the shell command lines typed in an interactive PTY session from the bytes that
 * pass through: the terminal echo (what the shell actually ran, after line editing, history and
 * completion) is the source of truth; OSC 133 prompt marks, when the upstream shell emits them,
 * delimit commands exactly and carry exit codes. Pure: no Node imports, no I/O.
 */

export interface ShellTrackerSink {
  /** a command line was submitted at a prompt */
  start(text: string, source: 'echo' | 'osc133'): void;
  /** the running command ended (exit code when OSC 133 D carried one) */
  finish(exitCode: number | null): void;
  /**
   * A line typed into the running command (`sudo -i`, a nested shell, a REPL) while the outer
   * shell's marks delimit commands: recorded from the echo, as echo mode would.
   */
  nested?(text: string): void;
}

const ESC = '\x1b';
const MAX_LINE = 4096;

type ParseState = 'text' | 'esc' | 'csi' | 'osc' | 'osc-esc';

export class ShellTracker {
  private line: string[] = [];
  private col = 0;
  private state: ParseState = 'text';
  private seq = '';
  private altScreen = false;
  private running = false;

  /** Enter keys typed whose echoed line we have not seen complete yet */
  private pendingEnters = 0;
  /** the text left of the cursor when typing of the current line began: the prompt */
  private prompt: string | null = null;
  private typing = false;
  /** any input keystroke typed since the last Enter */
  private typedSomething = false;

  private osc133 = false;
  /** column where the command line starts, from the OSC 133 B mark */
  private inputCol: number | null = null;
  /** Enter keys typed while a command runs (marks mode), and the line left of the cursor then */
  private runningEnters = 0;
  private runningPrompt: string | null = null;
  private runningTyping = false;
  /** between A (or B) and C: lines completed here are the command being entered */
  private atPrompt = false;
  private osc133Lines: string[] = [];

  constructor(private readonly sink: ShellTrackerSink) {}

  /** Keystrokes from the agent. */
  input(text: string): void {
    for (const ch of text) {
      if (this.running && this.osc133 && !this.altScreen) this.trackRunningKey(ch);
      if (ch === '\r' || ch === '\n') {
        if (!this.altScreen) this.pendingEnters++;
        this.typing = false;
        continue;
      }
      if (ch === '\x03') {
        // Ctrl-C abandons the line; the text left of the cursor now is not the next prompt.
        this.typing = false;
        this.typedSomething = false;
        this.prompt = null;
        continue;
      }
      if (!this.typing) {
        this.typing = true;
        this.typedSomething = true;
        this.prompt = this.line.slice(0, this.col).join('');
      }
    }
  }

  private trackRunningKey(ch: string): void {
    if (ch === '\r' || ch === '\n') {
      if (this.runningTyping) this.runningEnters++;
      this.runningTyping = false;
    } else if (ch === '\x03') {
      this.runningTyping = false;
      this.runningPrompt = null;
    } else if (!this.runningTyping) {
      this.runningTyping = true;
      this.runningPrompt = this.line.slice(0, this.col).join('');
    }
  }

  /**
   * The line as echoed at the cursor's row, without its prompt: the best guess of what an Enter
   * now submits when the keys alone cannot tell (history, completion).
   */
  echoedLine(): string {
    return this.stripPrompt(this.lineText()).trim();
  }

  /** a full-screen program (an editor, a pager) has the terminal: its keys are not shell lines */
  get fullScreen(): boolean {
    return this.altScreen;
  }

  /** Terminal output from the upstream host, in arrival order. */
  output(text: string): void {
    this.offset = 0;
    for (const ch of text) {
      this.offset += ch.length;
      this.outputChar(ch);
    }
  }

  /** Within `output`, how much of its text has been consumed (for splitting at a command start). */
  offset = 0;

  /** The session ended: a command still running ends with it. */
  end(exitCode: number | null): void {
    if (this.running) {
      this.running = false;
      this.sink.finish(exitCode);
    }
  }

  private outputChar(ch: string): void {
    switch (this.state) {
      case 'text':
        if (ch === ESC) {
          this.state = 'esc';
        } else if (ch === '\r') {
          this.col = 0;
        } else if (ch === '\n') {
          this.lineDone();
        } else if (ch === '\b') {
          if (this.col > 0) this.col--;
        } else if (ch >= ' ' && ch !== '\x7f') {
          if (this.col < MAX_LINE) {
            while (this.line.length < this.col) this.line.push(' ');
            this.line[this.col++] = ch;
          }
        }
        return;
      case 'esc':
        if (ch === '[') {
          this.state = 'csi';
          this.seq = '';
        } else if (ch === ']') {
          this.state = 'osc';
          this.seq = '';
        } else {
          this.state = 'text';
        }
        return;
      case 'csi':
        if (ch >= '@' && ch <= '~') {
          this.csi(this.seq, ch);
          this.state = 'text';
        } else if (this.seq.length < 64) {
          this.seq += ch;
        }
        return;
      case 'osc':
        if (ch === '\x07') {
          this.osc(this.seq);
          this.state = 'text';
        } else if (ch === ESC) {
          this.state = 'osc-esc';
        } else if (this.seq.length < 256) {
          this.seq += ch;
        }
        return;
      case 'osc-esc':
        this.osc(this.seq);
        this.state = ch === ESC ? 'esc' : 'text';
        return;
    }
  }

  private csi(params: string, final: string): void {
    const n = Math.max(1, parseInt(params, 10) || 1);
    switch (final) {
      case 'K': {
        const mode = parseInt(params, 10) || 0;
        if (mode === 0) this.line.length = Math.min(this.line.length, this.col);
        else if (mode === 1) for (let i = 0; i < this.col && i < this.line.length; i++) this.line[i] = ' ';
        else this.line = [];
        return;
      }
      case 'D':
        this.col = Math.max(0, this.col - n);
        return;
      case 'C':
        this.col = Math.min(MAX_LINE, this.col + n);
        return;
      case 'G':
        this.col = Math.min(MAX_LINE, n - 1);
        return;
      case 'P':
        this.line.splice(this.col, n);
        return;
      case '@':
        if (this.col <= this.line.length) this.line.splice(this.col, 0, ...' '.repeat(Math.min(n, MAX_LINE)));
        return;
      case 'X':
        for (let i = this.col; i < this.col + n && i < this.line.length; i++) this.line[i] = ' ';
        return;
      case 'J':
        if (params === '2' || params === '3') {
          this.line = [];
        }
        return;
      case 'h':
      case 'l':
        if (/^\?(1049|1047|47)$/.test(params)) this.altScreen = final === 'h';
        return;
      default:
        return;
    }
  }

  private osc(body: string): void {
    if (!body.startsWith('133;')) return;
    this.osc133 = true;
    const [mark, arg] = body.slice(4).split(';');
    switch (mark) {
      case 'A':
        this.inputCol = null;
        this.osc133Lines = [];
        this.atPrompt = true;
        return;
      case 'B':
        this.inputCol = this.col;
        this.osc133Lines = [];
        this.atPrompt = true;
        return;
      case 'C': {
        // A line still open at C (no newline echoed yet) is part of the command too.
        const open = this.lineText().replace(/\s+$/, '');
        if (open) this.osc133Lines.push(this.osc133Lines.length === 0 ? this.stripPrompt(open) : open);
        const text = this.osc133Lines.join('\n').trim();
        this.inputCol = null;
        this.osc133Lines = [];
        this.atPrompt = false;
        this.typedSomething = false;
        this.runningEnters = 0;
        this.runningTyping = false;
        this.prompt = null;
        if (this.running) this.sink.finish(null);
        this.running = false;
        if (text) {
          this.running = true;
          this.sink.start(text, 'osc133');
        }
        return;
      }
      case 'D': {
        if (this.running) {
          this.running = false;
          const code = arg !== undefined && /^-?\d+$/.test(arg) ? Number(arg) : null;
          this.sink.finish(code);
        }
        return;
      }
      default:
        return;
    }
  }

  /** The first line of a command without its prompt: from the B mark, else from where typing began. */
  private stripPrompt(line: string): string {
    if (this.inputCol !== null) return line.slice(this.inputCol);
    const p = (this.prompt ?? '').replace(/\s+$/, '');
    return p && line.startsWith(p) ? line.slice(p.length) : line;
  }

  private lineText(): string {
    return this.line.join('');
  }

  private lineDone(): void {
    const text = this.lineText().replace(/\s+$/, '');
    this.line = [];
    this.col = 0;
    if (this.osc133 && this.atPrompt) {
      if (this.pendingEnters > 0) this.pendingEnters--;
      this.osc133Lines.push(this.osc133Lines.length === 0 ? this.stripPrompt(text) : text);
      return;
    }
    if (this.osc133) return this.nestedLine(text);
    if (this.pendingEnters === 0 || this.altScreen) return;
    this.pendingEnters--;
    const typed = this.typedSomething;
    this.typedSomething = false;
    const prompt = this.prompt ?? '';
    this.prompt = null;
    if (!typed) return;
    // The echoed line minus the prompt is what the shell received. An empty remainder after
    // typing means echo was off (a password prompt): nothing to record as a command.
    const p = prompt.replace(/\s+$/, '');
    const command = (text.startsWith(p) ? text.slice(p.length) : text).trim();
    if (!command) return;
    if (this.running) this.sink.finish(null);
    this.running = true;
    this.sink.start(command, 'echo');
  }

  /**
   * With marks, a line completed while a command runs is that command's output, unless it is
   * the echo of a line typed into it after it started (keys sent ahead, as an agent piping its
   * commands does, belong to the prompts to come).
   */
  private nestedLine(text: string): void {
    if (!this.running || !this.sink.nested || this.runningEnters === 0 || this.altScreen) return;
    this.runningEnters--;
    const prompt = (this.runningPrompt ?? '').replace(/\s+$/, '');
    this.runningPrompt = null;
    const command = (prompt && text.startsWith(prompt) ? text.slice(prompt.length) : text).trim();
    if (command) this.sink.nested(command);
  }
}
