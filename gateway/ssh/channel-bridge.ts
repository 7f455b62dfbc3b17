/**
 * Relays a shell or exec channel between the agent and the upstream host and records it:
 * asciicast-shaped events ('i' input, 'o' output, 'e' stderr, 'r' resize, 'exit'), a `shell`
 * command per typed line or one `exec` command, with heads of large streams plus their size
 * and SHA-256, so memory and the store stay bounded whatever passes through.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { ClientChannel, ServerChannel } from 'ssh2';
import type { CommandHandle, Direction, Json, PolicyDecision, SessionRecorder } from '../common/types';
import { blockedMessage, decisionDetail, holdTerms } from '../policy/decision';
import { deniedMessage, recordApprovalOutcome, type ApprovalOutcome, type PendingApproval } from '../approvals';
import type { AgentConnection } from './connection';
import { drained, ended, relay } from './relay';
import { ScpSniffer, type ScpEntry } from './scp-sniffer';
import { ShellIntegration, type ShellOutput } from './shell-integration';
import { ShellTracker } from './shell-tracker';
import { TextCoalescer } from './text-coalescer';
import { TypedLine } from './typed-line';

/** how much of one line of a shell's stdin script is kept for deciding it */
const MAX_SCRIPT_LINE = 64 * 1024;

/** entries of a legacy scp transfer listed in its command's result */
const SCP_FILES_CAP = 1000;

/** `started`: the exec's command, recorded (and committed) before the request went upstream. */
export type BridgeMode = { kind: 'exec'; command: string; started?: CommandHandle } | { kind: 'shell'; pty: boolean };

/** Records an exec request: its command and the `exec` event (the command the bridge then finishes). */
export function startExec(session: SessionRecorder, command: string): CommandHandle {
  const scpDir = scpDirection(command);
  const cmd = session.startCommand({ kind: 'exec', text: command, detail: scpDir ? { scp: scpDir === 'to' ? 'upload' : 'download' } : undefined });
  session.event('exec', 'client→upstream', { command }, { commandId: cmd.id });
  return cmd;
}

export interface Bridge {
  resize(cols: number, rows: number): void;
}

/** Keeps the head of one stream as text events, and its size and hash in full. */
class StreamCapture {
  bytes = 0;
  private recorded = 0;
  private truncated = false;
  private readonly hash: Hash | null;
  private readonly coalescer: TextCoalescer;

  constructor(
    private readonly kind: string,
    private readonly direction: Direction,
    private readonly cap: number,
    hashed: boolean,
    emit: (kind: string, direction: Direction, text: string) => void,
  ) {
    this.hash = hashed ? createHash('sha256') : null;
    this.coalescer = new TextCoalescer((text) => emit(kind, direction, text));
  }

  /** Counts bytes that are recorded separately through `pushText`. */
  count(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.hash?.update(chunk);
  }

  pushText(text: string, emitTruncated: (data: Json) => void): void {
    if (!text) return;
    if (this.recorded < this.cap) {
      const take = Math.min(text.length, this.cap - this.recorded);
      this.coalescer.pushText(take === text.length ? text : text.slice(0, take));
      this.recorded += take;
    } else if (!this.truncated) {
      this.truncated = true;
      this.coalescer.flush();
      emitTruncated({ stream: this.kind, recordedBytes: this.recorded });
    }
  }

  push(chunk: Buffer, emitTruncated: (data: Json) => void): void {
    this.bytes += chunk.length;
    this.hash?.update(chunk);
    if (this.recorded < this.cap) {
      const take = Math.min(chunk.length, this.cap - this.recorded);
      this.coalescer.push(take === chunk.length ? chunk : chunk.subarray(0, take));
      this.recorded += take;
    } else if (!this.truncated) {
      this.truncated = true;
      this.coalescer.flush();
      emitTruncated({ stream: this.kind, recordedBytes: this.recorded });
    }
  }

  flush(): void {
    this.coalescer.flush();
  }

  /** A new command starts: its output gets a fresh head. */
  resetHead(): void {
    this.recorded = 0;
    this.truncated = false;
  }

  summary(): { [k: string]: Json } {
    const s: { [k: string]: Json } = { bytes: this.bytes };
    if (this.hash) s.sha256 = this.hash.digest('hex');
    if (this.truncated) s.truncated = true;
    return s;
  }
}

function liveMasker(agent: AgentConnection): (chunk: Buffer) => Buffer {
  const decoder = new StringDecoder('utf8');
  return (chunk) => Buffer.from(agent.ctx.masker.maskText(decoder.write(chunk)).text, 'utf8');
}

/** `scp -t DIR` (upload) / `scp -f FILE` (download), possibly with -r -p -v -d. */
function scpDirection(command: string): 'to' | 'from' | null {
  const m = /^\s*scp(\s+-[a-zA-Z]+)*\s/.exec(command);
  if (!m) return null;
  const flags = (m[0].match(/-[a-zA-Z]+/g) ?? []).join('');
  return flags.includes('t') ? 'to' : flags.includes('f') ? 'from' : null;
}

/** The shell-integration phase of one interactive shell channel, wired to its two ends. */
interface ShellStart {
  input(chunk: Buffer): Buffer;
  output(chunk: Buffer): ShellOutput;
  end(end: () => void): void;
  /** the channel is closing: stop the timer, hand over what the mark stripper held back */
  close(ch: ServerChannel): void;
}

function startShellIntegration(
  agent: AgentConnection,
  ch: ServerChannel,
  up: ClientChannel,
  record: (chunk: Buffer) => void,
  mask: ((chunk: Buffer) => Buffer) | null,
): ShellStart {
  const session = agent.session;
  let timer: NodeJS.Timeout | null = null;
  const integration: ShellIntegration = new ShellIntegration({
    inject: agent.ctx.connection.options.shellIntegration !== false,
    nonce: randomBytes(8).toString('hex'),
    writeUpstream: (data) => {
      if (!up.destroyed && up.writable) up.write(data);
    },
    setTimer: (ms, fire) => {
      if (timer) clearTimeout(timer);
      timer = ms === null ? null : setTimeout(fire, ms);
    },
    onLive: (method, shell) => {
      const hook = integration.typedHook;
      session.event('shell-marks', 'gateway', hook ? { method, shell, hook } : { method, shell });
      agent.shellMarks(method);
    },
  });
  integration.lateOutput = (chunk) => {
    record(chunk);
    if (!ch.destroyed && ch.writable) ch.write(mask ? mask(chunk) : chunk);
  };
  return {
    input: (chunk) => integration.input(chunk),
    output: (chunk) => integration.output(chunk),
    end: (end) => integration.end(end),
    close(c) {
      if (timer) clearTimeout(timer);
      timer = null;
      const rest = integration.flush();
      if (rest.length && !c.destroyed && c.writable) c.write(rest);
    },
  };
}

export function bridgeChannel(agent: AgentConnection, ch: ServerChannel, up: ClientChannel, mode: BridgeMode): Bridge {
  const session = agent.session;
  const { recording } = agent.ctx;
  const live = agent.ctx.connection.mask === 'live';
  const exec = mode.kind === 'exec';
  let commandId: number | undefined;
  let shellCmd: CommandHandle | null = null;
  let nestedCmd: CommandHandle | null = null;
  let execCmd: CommandHandle | null = null;

  const emit = (kind: string, direction: Direction, text: string): void => {
    session.event(kind, direction, text, { commandId, maskedLive: live && direction !== 'client→upstream' });
  };
  // Shell sessions are replayed like a video, so each command gets a generous head of output.
  const outCap = exec ? recording.payloadHead : Math.max(recording.payloadHead, 1024 * 1024);
  const input = new StreamCapture('i', 'client→upstream', exec ? recording.payloadHead : outCap, exec, emit);
  const output = new StreamCapture('o', 'upstream→client', outCap, exec, emit);
  const errors = new StreamCapture('e', 'upstream→client', outCap, exec, emit);
  const truncated = (direction: Direction) => (data: Json): void => {
    session.event('truncated', direction, data, { commandId });
  };

  const scpFiles: ScpEntry[] = [];
  let scpTotal = 0;
  let scp: ScpSniffer | null = null;
  const scpDir = exec ? scpDirection(mode.command) : null;
  if (scpDir) {
    scp = new ScpSniffer((entry) => {
      scpTotal++;
      if (scpFiles.length < SCP_FILES_CAP) scpFiles.push(entry);
      session.event('scp', scpDir === 'to' ? 'client→upstream' : 'upstream→client', { ...entry, direction: scpDir === 'to' ? 'upload' : 'download' }, { commandId });
    });
  }

  let tracker: ShellTracker | null = null;
  /** the part of the current output chunk not yet handed to the recording */
  let pendingOut = '';
  /** how much of the current chunk (tracker offsets) has been handed over already */
  let consumedBase = 0;
  /** Hands the output the tracker has consumed so far to the recording, before a command boundary. */
  const handOver = (): void => {
    const upTo = (tracker?.offset ?? 0) - consumedBase;
    if (upTo <= 0 || !pendingOut) return;
    output.pushText(pendingOut.slice(0, upTo), truncated('upstream→client'));
    pendingOut = pendingOut.slice(upTo);
    consumedBase += upTo;
  };
  if (exec) {
    execCmd = mode.started ?? startExec(session, mode.command);
    commandId = execCmd.id;
  } else {
    session.event('shell', 'client→upstream', { pty: mode.pty });
    if (mode.pty) {
      tracker = new ShellTracker({
        start: (text, source) => {
          // Output up to the end of the echoed line belongs to what came before.
          handOver();
          output.flush();
          input.flush();
          shellCmd = session.startCommand({ kind: 'shell', text, detail: { source } });
          commandId = shellCmd.id;
          output.resetHead();
        },
        finish: (exitCode) => {
          handOver();
          output.flush();
          nestedCmd?.finish({ status: 'ok', result: { exitCode: null } });
          nestedCmd = null;
          shellCmd?.finish({ status: exitCode === null || exitCode === 0 ? 'ok' : 'error', result: { exitCode } });
          shellCmd = null;
          commandId = undefined;
        },
        nested: (text) => {
          // A line typed into a running command (a nested shell, sudo -i, a REPL): its own
          // command, ended by the next such line or by the command it runs in.
          handOver();
          output.flush();
          nestedCmd?.finish({ status: 'ok', result: { exitCode: null } });
          nestedCmd = session.startCommand({ kind: 'shell', text, detail: { source: 'echo', within: shellCmd?.id ?? null } });
          commandId = nestedCmd.id;
          output.resetHead();
        },
      });
    }
  }
  const inText = new StringDecoder('utf8');
  const outText = new StringDecoder('utf8');
  let stopped = false;
  const mask = live ? liveMasker(agent) : null;

  const recordShellOutput = (chunk: Buffer): void => {
    if (!tracker) return;
    output.count(chunk);
    pendingOut = outText.write(chunk);
    consumedBase = 0;
    tracker.output(pendingOut);
    output.pushText(pendingOut, truncated('upstream→client'));
    pendingOut = '';
  };
  const integration = tracker ? startShellIntegration(agent, ch, up, recordShellOutput, mask) : null;

  const stop = (): void => {
    if (stopped) return;
    // Fail-closed: nothing more passes unrecorded.
    stopped = true;
    agent.ctx.log.error(`ssh session ${session.id}: recording failed; input not forwarded`);
    ch.stderr.write('\r\nflightlog: Flightlog: recording failed, command not forwarded; this session is stopped\r\n');
    up.close();
  };
  const typed = tracker ? new TypedLine() : null;
  /** an allowed line that ended in a backslash: the shell reads on, so the next one is decided joined to it */
  let continued = '';
  const carryOn = (line: string, refused: boolean): void => {
    continued = !refused && /(^|[^\\])(\\\\)*\\$/.test(line) ? line.slice(0, -1) : '';
  };
  const decideLine = (text: string): PolicyDecision | null => {
    if (!text.trim()) return null;
    const decision = agent.ctx.policy({ connection: agent.connectionName, protocol: 'ssh', identity: agent.identity, kind: 'shell', text });
    return decision.action === 'allow' ? null : decision;
  };
  type Approval = { held: PendingApproval; outcome: ApprovalOutcome };
  const refuseLine = (text: string, decision: PolicyDecision, approval?: Approval): void => {
    const message = approval ? deniedMessage(decision.rule, approval.outcome) : blockedMessage(decision);
    input.flush();
    const cmd = session.startCommand({ kind: 'shell', text, detail: { source: 'typed' } });
    if (approval) recordApprovalOutcome(session, decision, approval.held, approval.outcome, cmd.id);
    else session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'gateway', commandId: cmd.id, detail: decisionDetail(decision, text) });
    cmd.finish({ status: 'blocked', error: message });
    // a terminal shows it where the line was typed; a script's reader sees it on stderr
    const to = tracker ? ch : ch.stderr;
    if (!ch.destroyed && to.writable) to.write(tracker ? `\r\n${message}\r\n` : `${message}\n`);
  };
  /**
   * A line a `hold` rule matched waits for a human with its Enter not yet sent; the session's
   * later input queues behind it (the relay's gate). Returns null when the line is decided
   * without one (no approval loop here: the hold then refuses it). An approval is recorded here;
   * a refusal by refuseLine, on the blocked command.
   */
  const awaitApproval = async (text: string, decision: PolicyDecision): Promise<Approval | null> => {
    if (decision.action !== 'hold' || !agent.ctx.holdForApproval) return null;
    const held = agent.ctx.holdForApproval({
      sessionId: session.id,
      identity: agent.identity,
      runId: agent.runId,
      commandText: agent.ctx.masker.maskText(text).text,
      ...holdTerms(decision),
    });
    const to = tracker ? ch : ch.stderr;
    const note = `flightlog: guardrail "${decision.rule ?? 'policy'}" holds this line for approval (${held.approval.id})`;
    if (!ch.destroyed && to.writable) to.write(tracker ? `\r\n${note}\r\n` : `${note}\n`);
    const gone = (): void => held.cancel();
    ch.once('close', gone);
    const outcome = await held.outcome;
    ch.off('close', gone);
    const approval = { held: held.approval, outcome };
    if (outcome.decision === 'approve') recordApprovalOutcome(session, decision, approval.held, outcome);
    return approval;
  };
  /** the session was ended because a refused script line could not be taken back */
  let refusedEnd = false;
  /** without a pty: the text of the script line whose start already went upstream */
  let scriptLine = '';
  /**
   * A shell without a pty reads its stdin as a script, line by line: each line is decided when
   * its newline comes. A refused line that lay whole in one chunk is left out; one whose start
   * (or a line it continues) was already sent cannot be taken back, so the session ends instead.
   */
  const guardScript = async (chunk: Buffer): Promise<Buffer | null> => {
    const text = inText.write(chunk);
    const parts: Buffer[] = [];
    let byteStart = 0;
    let scan = 0;
    let textStart = 0;
    let changed = false;
    let i = 0;
    for (const c of text) {
      const at = i;
      i += c.length;
      if (c !== '\n') continue;
      scan = chunk.indexOf(0x0a, scan) + 1;
      const carried = scriptLine !== '';
      const joined = continued !== '';
      const line = continued + (scriptLine + text.slice(textStart, at)).replace(/\r$/, '');
      scriptLine = '';
      let decision = decideLine(line);
      const approval = decision ? await awaitApproval(line.trim(), decision) : null;
      if (approval?.outcome.decision === 'approve') decision = null;
      carryOn(line, decision !== null);
      if (decision) {
        refuseLine(line.trim(), decision, approval ?? undefined);
        if (carried || joined) return null;
        changed = true;
      } else {
        parts.push(chunk.subarray(byteStart, scan));
      }
      byteStart = scan;
      textStart = i;
    }
    // bounded: an endless line is decided on its head
    if (scriptLine.length < MAX_SCRIPT_LINE) scriptLine += text.slice(textStart, textStart + MAX_SCRIPT_LINE - scriptLine.length);
    if (!changed) return chunk;
    parts.push(chunk.subarray(byteStart));
    return Buffer.concat(parts);
  };
  /**
   * Decides every line an Enter in `chunk` submits, and returns what goes upstream instead:
   * a refused line's bytes and its Enter are replaced by Ctrl-E Ctrl-U, which make the shell
   * (readline, zle, or the tty's own line editing) discard what of it was already sent.
   */
  const guardLines = async (chunk: Buffer): Promise<Buffer | null> => {
    if (!tracker || !typed) return exec ? chunk : guardScript(chunk);
    const text = inText.write(chunk);
    if (tracker.fullScreen) {
      typed.reset();
      tracker.input(text);
      return chunk;
    }
    const parts: Buffer[] = [];
    let toTracker = '';
    let byteStart = 0;
    let scan = 0;
    let textStart = 0;
    let first = true;
    let changed = false;
    let i = 0;
    for (const c of text) {
      const at = i;
      i += c.length;
      // CR and LF are single bytes never inside a UTF-8 sequence: the nth in the text is the nth in the bytes
      if (c === '\r' || c === '\n') scan = chunk.indexOf(c === '\r' ? 0x0d : 0x0a, scan) + 1;
      const done = typed.key(c);
      if (!done) continue;
      const byteEnd = scan;
      // The echo can only show the first line of a chunk: later ones have not reached the shell.
      // Both are checked. Where the keys cannot tell (history, completion) the echo is the line
      // recorded; otherwise the keys are, and the echo guards against keys a program swallowed
      // (a `q` to a pager would otherwise prefix the next line).
      const echoed = first ? tracker.echoedLine() : '';
      first = false;
      const [lead, other] = done.exact || !echoed ? [done.text, echoed] : [echoed, done.text];
      const joined = continued !== '';
      const primary = continued + lead;
      const second = other && continued + other;
      let refusedText = primary;
      let decision = decideLine(primary);
      if (!decision && second && second !== primary) {
        decision = decideLine(second);
        refusedText = second;
      }
      const approval = decision ? await awaitApproval(refusedText.trim(), decision) : null;
      if (approval?.outcome.decision === 'approve') decision = null;
      carryOn(primary, decision !== null);
      if (decision) {
        refuseLine(refusedText.trim(), decision, approval ?? undefined);
        // Ctrl-U cannot take back the lines this one continues, and Ctrl-C would also flush keys
        // typed ahead: `;;` ends the command as a syntax error, so none of it runs.
        parts.push(Buffer.from(joined ? '\x05\x15;;\r' : '\x05\x15'));
        // to the tracker the line was abandoned, as with Ctrl-C
        toTracker += text.slice(textStart, at) + '\x03';
        changed = true;
      } else {
        parts.push(chunk.subarray(byteStart, byteEnd));
        toTracker += text.slice(textStart, i);
      }
      byteStart = byteEnd;
      textStart = i;
    }
    tracker.input(toTracker + text.slice(textStart));
    if (!changed) return chunk;
    parts.push(chunk.subarray(byteStart));
    return Buffer.concat(parts);
  };
  // A shell line goes to the host once its keystrokes are committed to the store.
  const lineGate = exec
    ? undefined
    : (chunk: Buffer): Promise<boolean | Buffer> | null => {
        // the keys of a chunk are taken in now; only a held line makes the decision wait
        const decided = stopped ? null : guardLines(chunk);
        if (stopped || (!chunk.includes(0x0d) && !chunk.includes(0x0a))) {
          decided?.catch((err: Error) => agent.ctx.log.error(`ssh session ${session.id}: checking typed input failed: ${err.message}`));
          return null;
        }
        return (decided as Promise<Buffer | null>).then((forward) => {
          if (!forward) {
            // a refused script line already partly sent: end the shell rather than run any of it
            stopped = true;
            refusedEnd = true;
            up.close();
            return false;
          }
          input.flush();
          return session.flushed().then(
            () => (forward === chunk ? true : forward),
            () => {
              stop();
              return false;
            },
          );
        });
      };
  const inbound = relay(
    ch,
    up,
    (chunk) => {
      if (session.failed) return stop();
      input.push(chunk, truncated('client→upstream'));
      if (scpDir === 'to') scp?.push(chunk);
    },
    (chunk) => (stopped ? Buffer.alloc(0) : integration ? integration.input(chunk) : chunk),
    lineGate,
  );
  if (tracker) {
    relay(up, ch, undefined, (chunk) => {
      const r = integration ? integration.output(chunk) : { record: chunk, client: chunk };
      if (r.record.length) recordShellOutput(r.record);
      return mask && r.client.length ? mask(r.client) : r.client;
    });
  } else {
    relay(
      up,
      ch,
      (chunk) => {
        output.push(chunk, truncated('upstream→client'));
        if (scpDir === 'from') scp?.push(chunk);
      },
      mask ?? undefined,
    );
  }
  relay(up.stderr, ch.stderr, (chunk) => errors.push(chunk, truncated('upstream→client')), live ? liveMasker(agent) : undefined);

  let exit: { code: number | null; signal?: string; dump?: boolean; desc?: string } | null = null;
  up.on('exit', (code: number | null, signal?: string, dump?: boolean, desc?: string) => {
    exit = { code, signal, dump, desc };
  });
  ch.on('end', () => void inbound.idle().then(() => (integration ? integration.end(() => up.end()) : up.end())));
  ch.on('close', () => up.close());
  up.on('close', () => {
    void Promise.all([ended(up), ended(up.stderr)])
      .then(() => Promise.all([drained(ch), drained(ch.stderr)]))
      .then(() => {
        integration?.close(ch);
        input.flush();
        output.flush();
        errors.flush();
        // 126, as for a refused exec: whatever the host said, the script did not run as sent
        const e = (refusedEnd ? { code: 126 } : exit) as typeof exit;
        const code = e?.code ?? null;
        const signal = e?.signal ?? null;
        session.event('exit', 'upstream→client', { code, signal }, { commandId });
        if (e) {
          if (code !== null) ch.exit(code);
          else if (signal) ch.exit(signal.replace(/^SIG/, ''), e.dump ?? false, e.desc ?? '');
        }
        ch.end();
        if (tracker) tracker.end(code);
        nestedCmd?.finish({ status: 'ok', result: { exitCode: null } });
        nestedCmd = null;
        shellCmd = null;
        if (execCmd) {
          const result: { [k: string]: Json } = { exitCode: code, signal, stdout: output.summary(), stderr: errors.summary(), stdin: input.summary() };
          if (scpDir) {
            result.files = scpFiles.map((f) => ({ ...f }));
            // Every entry is an 'scp' event; the command's own list is a bounded summary.
            if (scpTotal > scpFiles.length) Object.assign(result, { filesTruncated: true, filesTotal: scpTotal });
          }
          // what the client piped in (`cat > f` stdin) is the client's, not the host's
          execCmd.finish({ status: code === 0 ? 'ok' : 'error', result, error: code === 0 ? undefined : signal ? `killed by ${signal}` : `exit status ${code ?? 'unknown'}`, resultFrom: { stdin: 'client→upstream' } });
        }
      });
  });

  return {
    resize(cols: number, rows: number): void {
      output.flush();
      session.event('r', 'client→upstream', `${cols}x${rows}`, { commandId });
    },
  };
}
