/**
 * Exact command boundaries for interactive shells. A shell that emits OSC 133 prompt marks
 * (A prompt, B input, C output, D;status end) tells us where each command starts and ends and
 * how it exited; most shells do not, so the gateway types a one-line hook into bash or zsh at
 * the first prompt that makes them emit the marks, hides that line and its echo from both the
 * agent and the recording, and strips the marks it caused from what the agent's terminal sees.
 * Environment requests could set PROMPT_COMMAND too, but sshd's AcceptEnv rarely allows it and
 * ssh2 sends them without asking for a reply, so there is no telling whether one took.
 * Pure: no Node imports beyond Buffer, no I/O; timers are the caller's.
 */

/** How a shell session's command boundaries were found (recorded per shell channel). */
export type ShellMarksMethod = 'shell' | 'injected' | 'echo';

const ESC = '\x1b';
const BEL = '\x07';

/**
 * The line typed into the shell. bash gets PROMPT_COMMAND (D with `$?`, then A), PS0 (C) and a
 * B mark at the end of PS1; zsh the same through precmd/preexec (inside `eval`, so that sh and
 * dash can still parse the line and answer with an empty shell name). The leading space keeps
 * it out of the history where HISTCONTROL ignores such lines; elsewhere bash deletes it.
 * The reply carries the nonce, so no output the agent provokes can pass for it.
 */
export function hookLine(nonce: string): string {
  const bash = [
    `__fl_pc() { local s=$?; printf '\\033]133;D;%s\\007\\033]133;A\\007' "$s"; return $s; }`,
    'PROMPT_COMMAND="__fl_pc;${PROMPT_COMMAND}"',
    `PS0="$(printf '\\033]133;C\\007')"`,
    `PS1="$PS1\\[$(printf '\\033]133;B\\007')\\]"`,
    'case "$HISTCONTROL" in *ignorespace*|*ignoreboth*) ;; *) history -d -1 2>/dev/null;; esac',
    '__fl_sh=bash',
  ].join('; ');
  const zsh = [
    '__fl_precmd() { local s=$?; printf "\\033]133;D;%s\\007\\033]133;A\\007" $s; }',
    '__fl_preexec() { printf "\\033]133;C\\007"; }',
    'precmd_functions=(__fl_precmd $precmd_functions)',
    'preexec_functions=($preexec_functions __fl_preexec)',
    'PS1="$PS1%{$(printf "\\033]133;B\\007")%}"',
    '__fl_sh=zsh',
  ].join('; ');
  return (
    ` __fl_sh=; if [ -n "$BASH_VERSION" ]; then ${bash}; elif [ -n "$ZSH_VERSION" ]; then eval '${zsh}'; fi; ` +
    `printf '\\033]133;flightlog;%s;${nonce}\\007' "$__fl_sh"; unset __fl_sh\r`
  );
}

/** Finds the hook's reply in (latin1) output: the shell that took the marks, and where it ends. */
export function findReady(text: string, nonce: string): { shell: string; end: number } | null {
  const head = `${ESC}]133;flightlog;`;
  let from = 0;
  for (;;) {
    const i = text.indexOf(head, from);
    if (i < 0) return null;
    const tail = `;${nonce}${BEL}`;
    const j = text.indexOf(tail, i + head.length);
    if (j >= 0 && j - (i + head.length) <= 8) return { shell: text.slice(i + head.length, j), end: j + tail.length };
    from = i + 1;
  }
}

/** True when (latin1) output holds an OSC 133 mark: the shell is integrated already. */
export function hasPromptMarks(text: string): boolean {
  return text.includes(`${ESC}]133;`);
}

const MARK_PREFIX = `${ESC}]133;`;
const MAX_MARK = 256;

/**
 * Removes OSC 133 marks from a byte stream (worked on as latin1, so any bytes pass unchanged),
 * marks split across chunks included. A sequence that is not a mark passes as it came.
 */
export class MarkStripper {
  private carry = '';

  push(chunk: Buffer): Buffer {
    let s = this.carry + chunk.toString('latin1');
    this.carry = '';
    if (!s.includes(ESC)) return Buffer.from(s, 'latin1');
    let out = '';
    let i = 0;
    while (i < s.length) {
      const e = s.indexOf(ESC, i);
      if (e < 0) {
        out += s.slice(i);
        break;
      }
      out += s.slice(i, e);
      const rest = s.slice(e, e + MARK_PREFIX.length);
      if (rest.length < MARK_PREFIX.length && MARK_PREFIX.startsWith(rest)) {
        this.carry = s.slice(e);
        break;
      }
      if (rest !== MARK_PREFIX) {
        out += ESC;
        i = e + 1;
        continue;
      }
      const bel = s.indexOf(BEL, e);
      const st = s.indexOf(`${ESC}\\`, e + 1);
      const end = bel < 0 ? (st < 0 ? -1 : st + 2) : st < 0 || bel < st ? bel + 1 : st + 2;
      if (end < 0) {
        if (s.length - e > MAX_MARK) {
          // Not a mark after all (unterminated): let it through rather than swallow output.
          out += s.slice(e);
          break;
        }
        this.carry = s.slice(e);
        break;
      }
      i = end;
    }
    s = out;
    return Buffer.from(s, 'latin1');
  }

  /** Whatever is held back at the end of the stream. */
  flush(): Buffer {
    const c = this.carry;
    this.carry = '';
    return Buffer.from(c, 'latin1');
  }
}

export interface ShellIntegrationOptions {
  /** false: never type the hook (the connection's options.shellIntegration) */
  inject: boolean;
  nonce: string;
  /** types into the upstream shell */
  writeUpstream(data: Buffer | string): void;
  /** the phase changed to live: boundaries come from `method` from now on */
  onLive(method: ShellMarksMethod, shell: string | null): void;
  /** (re)arms the caller's single timer; null cancels it */
  setTimer(ms: number | null, fire: () => void): void;
  /** quiet after the first output that means "the shell waits at its prompt" */
  quietMs?: number;
  /** give up on a hook that gets no reply (not a shell we know, or not at a prompt) */
  replyTimeoutMs?: number;
  /** give up waiting for a first prompt */
  promptTimeoutMs?: number;
}

/** What passes for one chunk of upstream output: to the recording and tracker, and to the agent. */
export interface ShellOutput {
  record: Buffer;
  client: Buffer;
}

const EMPTY = Buffer.alloc(0);
const HELD_INPUT_CAP = 1024 * 1024;

/**
 * The start of an interactive shell: waits for the first prompt (output, then quiet), types the
 * hook, hides everything until its reply, then lets traffic flow. The agent's input is held
 * meanwhile (an agent pipes its commands in at once: they must reach the shell after the hook,
 * not before it), and so is its EOF.
 */
export class ShellIntegration {
  private phase: 'waiting' | 'hooking' | 'live' = 'waiting';
  private method: ShellMarksMethod = 'echo';
  private sawOutput = false;
  private hookSent = false;
  private hidden = '';
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** agent input waits (and with it its EOF) until the shell reads at a prompt again */
  private holding = true;
  private endHeld = false;
  private readonly stripper = new MarkStripper();
  private onEnd: (() => void) | null = null;

  constructor(private readonly opts: ShellIntegrationOptions) {
    if (!opts.inject) {
      this.phase = 'live';
      this.holding = false;
      // Not from inside the constructor: the caller's callbacks may refer to this object.
      queueMicrotask(() => opts.onLive('echo', null));
      return;
    }
    // Generous: a slow login (profile scripts on a loaded host) only delays input the pty
    // would have queued anyway.
    opts.setTimer(opts.promptTimeoutMs ?? 20_000, () => this.goLive('echo', null));
  }

  /** The line typed into the shell, once it was (an auditor sees what the gateway typed). */
  get typedHook(): string | null {
    return this.hookSent ? hookLine(this.opts.nonce).trim() : null;
  }

  /** Agent input: what to forward now (empty while held). */
  input(chunk: Buffer): Buffer {
    if (!this.holding) return chunk;
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    // A flood before the first prompt: stop trying rather than buffer without bound.
    if (this.heldBytes > HELD_INPUT_CAP) {
      this.goLive('echo', null);
      this.release();
    }
    return EMPTY;
  }

  /** The agent's EOF: `end` runs once held input has gone upstream. */
  end(end: () => void): void {
    if (!this.holding) return end();
    this.endHeld = true;
    this.onEnd = end;
  }

  output(chunk: Buffer): ShellOutput {
    if (this.phase === 'waiting') {
      const text = chunk.toString('latin1');
      if (hasPromptMarks(text)) {
        // The shell marks its own prompts: nothing to inject, nothing to strip.
        this.goLive('shell', null);
        return { record: chunk, client: chunk };
      }
      this.sawOutput = true;
      this.opts.setTimer(this.opts.quietMs ?? 150, () => this.sendHook());
      return { record: chunk, client: chunk };
    }
    if (this.phase === 'hooking') {
      this.hidden += chunk.toString('latin1');
      const ready = findReady(this.hidden, this.opts.nonce);
      if (!ready) return { record: EMPTY, client: EMPTY };
      const after = Buffer.from(this.hidden.slice(ready.end), 'latin1');
      this.hidden = '';
      const marked = ready.shell === 'bash' || ready.shell === 'zsh';
      this.goLive(marked ? 'injected' : 'echo', ready.shell || null, true);
      // The first prompt is still on the agent's screen: the shell's next one replaces it.
      const reset = Buffer.from('\r\x1b[K');
      return this.settle(this.passLive(Buffer.concat([reset, after])));
    }
    return this.settle(this.passLive(chunk));
  }

  /**
   * The reply comes while the shell still runs the hook, its terminal in cooked mode: input
   * sent now would be echoed by the kernel and then again by readline. Release it once the
   * prompt is up: at the B mark, or after a quiet spell (a prompt rebuilt without the mark).
   */
  private settle(out: ShellOutput): ShellOutput {
    if (!this.holding || this.phase !== 'live') return out;
    if (out.record.toString('latin1').includes(`${ESC}]133;B`)) this.release();
    else this.opts.setTimer(this.opts.quietMs ?? 150, () => this.release());
    return out;
  }

  /** End of the stream: anything held back by the stripper. */
  flush(): Buffer {
    return this.method === 'injected' ? this.stripper.flush() : EMPTY;
  }

  private passLive(chunk: Buffer): ShellOutput {
    if (this.method === 'echo' && !this.opts.inject && hasPromptMarks(chunk.toString('latin1'))) {
      // Not injected, but the shell marks its prompts after all (the tracker follows them).
      this.method = 'shell';
      this.opts.onLive('shell', null);
    }
    return { record: chunk, client: this.method === 'injected' ? this.stripper.push(chunk) : chunk };
  }

  private sendHook(): void {
    if (this.phase !== 'waiting' || !this.sawOutput) return;
    this.phase = 'hooking';
    this.hookSent = true;
    this.opts.writeUpstream(hookLine(this.opts.nonce));
    this.opts.setTimer(this.opts.replyTimeoutMs ?? 8000, () => this.goLive('echo', null));
  }

  private goLive(method: ShellMarksMethod, shell: string | null, replied = false): void {
    if (this.phase === 'live') return;
    const wasHooking = this.phase === 'hooking';
    this.phase = 'live';
    this.method = method;
    this.opts.setTimer(null, () => undefined);
    this.opts.onLive(method, shell);
    if (wasHooking && this.hidden) {
      // No reply: what the shell said to the hook is shown after all, rather than lost.
      const text = this.hidden;
      this.hidden = '';
      this.lateOutput?.(Buffer.from(text, 'latin1'));
    }
    // After a reply, input waits for the prompt (settle); otherwise there is nothing to wait for.
    if (replied) this.opts.setTimer(this.opts.quietMs ?? 150, () => this.release());
    else this.release();
  }

  private release(): void {
    if (!this.holding) return;
    this.holding = false;
    this.opts.setTimer(null, () => undefined);
    for (const c of this.held) this.opts.writeUpstream(c);
    this.held = [];
    this.heldBytes = 0;
    if (this.endHeld && this.onEnd) this.onEnd();
    this.onEnd = null;
  }

  /** Set by the caller: output released outside an `output` call (a hook that got no reply). */
  lateOutput: ((chunk: Buffer) => void) | null = null;
}
