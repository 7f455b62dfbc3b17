/**
 * One authenticated agent connection: a session in the store, one upstream SSH login, and every
 * channel the agent opens (shell, exec, sftp, forwards) relayed to the upstream and recorded.
 */
import type { Client, ClientChannel, Connection, PseudoTtyInfo, SFTPWrapper, ServerChannel, Session, TcpipBindInfo, TcpipRequestInfo } from 'ssh2';
import type { SshUpstream } from '../common/config-schema';
import type { ListenerContext } from '../core/listener';
import type { PolicyDecision, SessionRecorder } from '../common/types';
import { FlightlogError } from '../core/errors';
import { HostKeyChangedError } from './errors';
import type { OpenFailDescriber } from './ssh2-internals';
import { connectUpstream } from './upstream';
import { bridgeChannel, startExec } from './channel-bridge';
import { SftpProxy } from './sftp-proxy';
import { drained, ended } from './relay';
import { blockedMessage, decisionDetail, holdTerms } from '../policy/decision';
import { deniedMessage, recordApprovalOutcome, type ApprovalOutcome } from '../approvals';
import type { PendingApproval } from '../common/api-types';

const DEFAULT_ENV_ALLOW = ['LANG', 'LC_*', 'TERM'];
const REFUSED = 'Flightlog: recording failed, command not forwarded';
/** before/after content kept per file written over SFTP */
const FILE_CONTENT_CAP = 256 * 1024;

export class AgentConnection {
  readonly session: SessionRecorder;
  private readonly upstream: Promise<Client>;
  private upstreamClient: Client | null = null;
  private failure: Error | null = null;
  private sideSftp: Promise<SFTPWrapper> | null = null;
  /** messages for the agent's terminal about refused requests, shown on the next channel's stderr */
  private notices: string[] = [];
  private readonly channels = new Set<{ close(): void }>();
  private readonly remoteForwards = new Map<string, { commandId: number; finish: (error?: string) => void }>();
  private closed = false;
  readonly runId: string | null;

  constructor(
    readonly ctx: ListenerContext,
    private readonly conn: Connection,
    readonly identity: string,
    private readonly describer: OpenFailDescriber,
    meta: { clientAddr?: string; user: string; software?: string; runId?: string | null },
  ) {
    const up = ctx.connection.upstream as SshUpstream;
    this.runId = meta.runId ?? null;
    this.session = ctx.openSession({
      identity,
      runId: meta.runId ?? null,
      clientAddr: meta.clientAddr,
      meta: { user: meta.user, client: meta.software ?? null, upstream: `${up.user}@${up.host}:${up.port}` },
    });
    this.session.onTerminate((_reason, message) => this.terminate(message));
    this.upstream = this.login(up);
    // Attach a handler now so an early failure is not an unhandled rejection; channels report it.
    this.upstream.catch(() => undefined);
    conn.on('session', (accept: () => Session) => this.onSession(accept()));
    conn.on('tcpip', (accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo) => this.onDirectTcpip(accept, reject, info));
    conn.on('request', (accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, name: string, info: TcpipBindInfo) =>
      this.onGlobalRequest(accept, reject, name, info),
    );
  }

  get connectionName(): string {
    return this.ctx.connection.name;
  }

  get allowForwarding(): boolean {
    return this.ctx.connection.options.allowForwarding === true;
  }

  envAllowed(name: string): boolean {
    const list = this.ctx.connection.options.envAllow;
    const patterns = Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : DEFAULT_ENV_ALLOW;
    return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : p === name));
  }

  notice(message: string): void {
    if (this.notices.length < 16) this.notices.push(message);
  }

  takeNotices(): string {
    const text = this.notices.map((n) => `${n}\r\n`).join('');
    this.notices = [];
    return text;
  }

  /** How the session's interactive shell finds command boundaries (session meta `shellMarks`). */
  shellMarks(method: string): void {
    this.session.updateMeta?.({ shellMarks: method });
  }

  track(channel: { close(): void }): () => void {
    this.channels.add(channel);
    return () => this.channels.delete(channel);
  }

  /** set once the gateway ended this connection (token revoked, run ended): no new channel starts */
  terminated = false;

  /**
   * The gateway ends the connection: the upstream goes at once (nothing more passes), each open
   * channel's stderr says why, then the agent's connection closes once that is written (≤ 1 s).
   */
  private terminate(message: string): void {
    if (this.closed || this.terminated) return;
    this.terminated = true;
    this.upstreamClient?.end();
    const closing: Promise<void>[] = [];
    for (const c of this.channels) {
      const ch = c as Partial<ServerChannel>;
      if (!ch.stderr || typeof ch.once !== 'function') continue;
      const channel = ch as ServerChannel;
      closing.push(new Promise<void>((resolve) => channel.once('close', () => resolve())));
      // OpenSSH drops output it has not written out when the connection goes, but flushes a
      // channel's before closing it: close each channel once the message is on the wire, rather
      // than wait for its bridge, which may take longer than the second this has
      ch.stderr.write(`\r\nflightlog: ${message}; connection closed\r\n`, () => {
        if (!channel.destroyed) channel.close();
      });
    }
    // OpenSSH leaves by itself once its channels are closed, after printing what they carried;
    // ending the connection under it can make it exit before that. So the gateway ends it only
    // if the client is still there after 900 ms.
    const clientGone = new Promise<void>((resolve) => this.conn.once('close', () => resolve()));
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 900).unref());
    void Promise.race([Promise.all(closing).then(() => clientGone), timeout]).then(() => this.close('closed'));
  }

  /** Ends the agent's connection and the upstream login; closes the session. Idempotent. */
  close(status: 'closed' | 'error' = 'closed', reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.channels) c.close();
    for (const f of this.remoteForwards.values()) f.finish();
    this.remoteForwards.clear();
    this.upstreamClient?.end();
    this.conn.end();
    this.session.close(this.failure ? 'error' : status, this.failure ? this.failure.message : reason);
  }

  private async login(up: SshUpstream): Promise<Client> {
    try {
      const login = await connectUpstream({
        connection: this.connectionName,
        upstream: up,
        secrets: this.ctx.secrets,
        dataDir: this.ctx.dataDir,
      });
      this.upstreamClient = login.client;
      if (this.closed) {
        login.client.end();
        throw new FlightlogError('E_SSH_CLOSED', 'the agent disconnected');
      }
      this.session.event('upstream', 'gateway', {
        host: up.host,
        port: up.port,
        user: up.user,
        hostKey: login.hostKey.fingerprint,
        hostKeySource: login.hostKey.source,
      });
      if (login.hostKey.source === 'learned') {
        this.session.event('host-key-learned', 'gateway', { connection: this.connectionName, fingerprint: login.hostKey.fingerprint, key: login.hostKey.key });
        this.ctx.log.info(`ssh ${this.connectionName}: learned upstream host key ${login.hostKey.fingerprint}`);
      }
      login.client.on('tcp connection', (details, accept, reject) => this.onForwardedTcpip(details, accept, reject));
      login.client.on('close', () => {
        // a revocation ends the upstream first and the agent's connection itself, once its
        // channels carried the notice: ending it here would race the notice (terminate)
        if (!this.terminated) this.close('closed', 'upstream closed the connection');
      });
      login.client.on('error', (e: Error) => this.ctx.log.warn(`ssh ${this.connectionName}: upstream error: ${e.message}`));
      return login.client;
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.failure = err;
      if (err instanceof HostKeyChangedError) {
        this.session.event('host-key-changed', 'gateway', { connection: this.connectionName, expected: err.expected, actual: err.actual });
        this.session.finding({ category: 'guardrail', kind: 'host-key-changed', direction: 'gateway', detail: { expected: err.expected, actual: err.actual } });
      } else {
        this.session.event('upstream-error', 'gateway', { message: err.message });
      }
      this.ctx.log.warn(err.message);
      throw err;
    }
  }

  /** The upstream login, or null after telling the agent on this channel why there is none. */
  async upstreamFor(ch: ServerChannel): Promise<Client | null> {
    try {
      return await this.upstream;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      ch.stderr.write(`${msg}\r\n`);
      await drained(ch.stderr);
      ch.exit(255);
      ch.end();
      // Not at once: OpenSSH drops its unflushed stderr when the server disconnects, and the
      // agent would never read why. It closes the connection itself after its last channel.
      setTimeout(() => this.close('error'), 5000).unref();
      return null;
    }
  }

  sftpSideChannel(): Promise<SFTPWrapper> {
    if (!this.sideSftp) {
      this.sideSftp = this.upstream.then(
        (client) => new Promise<SFTPWrapper>((resolve, reject) => client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp)))),
      );
      this.sideSftp.catch(() => undefined);
    }
    return this.sideSftp;
  }

  private onSession(s: Session): void {
    new SessionChannel(this, s);
  }

  // ---- port forwarding -------------------------------------------------------------------

  private forwardDenied(kind: string, target: string): string {
    const msg = `flightlog: ${kind} is disabled on connection '${this.connectionName}' (${target} refused); set options.allowForwarding: true to allow it`;
    this.session.event('forward', 'gateway', { type: kind, target, allowed: false });
    this.session.finding({ category: 'guardrail', kind: 'forwarding-denied', direction: 'gateway', detail: { type: kind, target } });
    return msg;
  }

  private onDirectTcpip(accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo): void {
    const target = `${info.destIP}:${info.destPort}`;
    if (!this.allowForwarding) {
      const msg = this.forwardDenied('port forwarding', target);
      this.describer.deny(reject, msg);
      this.notice(msg);
      return;
    }
    this.upstream.then(
      (client) =>
        client.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, up) => {
          if (err) {
            this.session.event('forward', 'gateway', { type: 'direct-tcpip', target, error: err.message });
            return this.describer.deny(reject, `flightlog: upstream could not open ${target}: ${err.message}`);
          }
          this.pipeForward(accept(), up, 'direct-tcpip', { from: `${info.srcIP}:${info.srcPort}`, to: target });
        }),
      () => this.describer.deny(reject, 'flightlog: upstream login failed'),
    );
  }

  private onGlobalRequest(accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, name: string, info: TcpipBindInfo): void {
    if (name === 'tcpip-forward') {
      const bind = `${info.bindAddr}:${info.bindPort}`;
      if (!this.allowForwarding) {
        this.notice(this.forwardDenied('remote port forwarding', bind));
        reject?.();
        return;
      }
      this.upstream.then(
        (client) =>
          client.forwardIn(info.bindAddr, info.bindPort, (err, port) => {
            if (err) {
              this.session.event('forward', 'gateway', { type: 'tcpip-forward', bind, error: err.message });
              return reject?.();
            }
            const bound = info.bindPort === 0 ? port : info.bindPort;
            const cmd = this.session.startCommand({ kind: 'forward', text: `remote forward ${info.bindAddr}:${bound}`, targets: [`${info.bindAddr}:${bound}`], detail: { type: 'tcpip-forward' } });
            const started = Date.now();
            this.remoteForwards.set(`${info.bindAddr}:${bound}`, {
              commandId: cmd.id,
              finish: (error) => cmd.finish({ status: error ? 'error' : 'ok', error, result: { durationMs: Date.now() - started } }),
            });
            accept?.(bound);
          }),
        () => reject?.(),
      );
      return;
    }
    if (name === 'cancel-tcpip-forward') {
      const key = `${info.bindAddr}:${info.bindPort}`;
      const fwd = this.remoteForwards.get(key);
      this.remoteForwards.delete(key);
      fwd?.finish();
      this.upstreamClient?.unforwardIn(info.bindAddr, info.bindPort, () => accept?.());
      if (!this.upstreamClient) reject?.();
      return;
    }
    this.session.event('request', 'gateway', { name, allowed: false });
    reject?.();
  }

  private onForwardedTcpip(
    details: { destIP: string; destPort: number; srcIP: string; srcPort: number },
    accept: () => ClientChannel,
    reject: () => void,
  ): void {
    const fwd = this.remoteForwards.get(`${details.destIP}:${details.destPort}`) ?? [...this.remoteForwards.values()][0];
    if (!fwd) return reject();
    this.conn.forwardOut(details.destIP, details.destPort, details.srcIP, details.srcPort, (err, ch) => {
      if (err) return reject();
      this.pipeForward(ch, accept(), 'forwarded-tcpip', { from: `${details.srcIP}:${details.srcPort}`, to: `${details.destIP}:${details.destPort}` });
    });
  }

  /** Relays one forwarded TCP stream both ways, recording endpoints, bytes and duration. */
  private pipeForward(agentSide: ServerChannel, upstreamSide: ClientChannel, type: string, ends: { from: string; to: string }): void {
    const cmd = this.session.startCommand({ kind: 'forward', text: `${type} ${ends.from} → ${ends.to}`, targets: [ends.to], detail: { type, ...ends } });
    const started = Date.now();
    let sent = 0;
    let received = 0;
    agentSide.on('data', (c: Buffer) => (sent += c.length));
    upstreamSide.on('data', (c: Buffer) => (received += c.length));
    agentSide.pipe(upstreamSide);
    upstreamSide.pipe(agentSide);
    const untrack = this.track({ close: () => { agentSide.close(); upstreamSide.close(); } });
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      untrack();
      agentSide.close();
      upstreamSide.close();
      cmd.finish({ status: 'ok', result: { bytesToUpstream: sent, bytesFromUpstream: received, durationMs: Date.now() - started } });
    };
    agentSide.on('close', finish);
    upstreamSide.on('close', finish);
    agentSide.on('error', finish);
    upstreamSide.on('error', finish);
  }
}

/** One `session` channel: its pty/env/signal requests, then a shell, an exec or a subsystem. */
class SessionChannel {
  private pty: PseudoTtyInfo | null = null;
  private env: Record<string, string> = {};
  private up: ClientChannel | null = null;
  private onResize: ((cols: number, rows: number) => void) | null = null;

  constructor(private readonly agent: AgentConnection, s: Session) {
    const session = agent.session;
    s.on('pty', (accept: (() => void) | undefined, _reject: unknown, info: PseudoTtyInfo) => {
      this.pty = info;
      // `ssh -tt` from a pipe asks for a 0x0 terminal; programs then assume 80x24, so the
      // recording (and its replay) does too. The upstream still gets what the client asked.
      const cols = info.cols || 80;
      const rows = info.rows || 24;
      session.event('pty', 'client→upstream', info.cols && info.rows ? { term: info.term, cols, rows } : { term: info.term, cols, rows, requested: `${info.cols}x${info.rows}` });
      accept?.();
    });
    s.on('window-change', (accept: (() => void) | undefined, _reject: unknown, info: { cols: number; rows: number; width: number; height: number }) => {
      if (this.pty) Object.assign(this.pty, { cols: info.cols, rows: info.rows, width: info.width, height: info.height });
      if (this.onResize) this.onResize(info.cols, info.rows);
      else session.event('r', 'client→upstream', `${info.cols}x${info.rows}`);
      this.up?.setWindow(info.rows, info.cols, info.height, info.width);
      accept?.();
    });
    s.on('env', (accept: (() => void) | undefined, reject: (() => void) | undefined, info: { key: string; val: string }) => {
      const allowed = agent.envAllowed(info.key);
      session.event('env', 'client→upstream', allowed ? { name: info.key, value: info.val, allowed } : { name: info.key, allowed });
      if (allowed) {
        this.env[info.key] = info.val;
        accept?.();
      } else reject?.();
    });
    s.on('signal', (accept: (() => void) | undefined, _reject: unknown, info: { name: string }) => {
      session.event('signal', 'client→upstream', { name: info.name });
      this.up?.signal(info.name);
      accept?.();
    });
    s.on('auth-agent', (_accept: unknown, reject: (() => void) | undefined) => {
      const msg = `flightlog: agent forwarding is disabled on connection '${agent.connectionName}'`;
      session.event('forward', 'gateway', { type: 'auth-agent', allowed: false });
      session.finding({ category: 'guardrail', kind: 'forwarding-denied', direction: 'gateway', detail: { type: 'auth-agent' } });
      agent.notice(msg);
      reject?.();
    });
    s.on('x11', (_accept: unknown, reject: (() => void) | undefined) => {
      session.event('forward', 'gateway', { type: 'x11', allowed: false });
      agent.notice(`flightlog: X11 forwarding is disabled on connection '${agent.connectionName}'`);
      reject?.();
    });
    s.on('shell', (accept: () => ServerChannel) => void this.start(accept(), { type: 'shell' }));
    s.on('exec', (accept: () => ServerChannel, _reject: unknown, info: { command: string }) => void this.start(accept(), { type: 'exec', command: info.command }));
    s.on('subsystem', (accept: () => ServerChannel, reject: () => void, info: { name: string }) => {
      if (info.name !== 'sftp') {
        session.event('subsystem', 'client→upstream', { name: info.name, allowed: false });
        return reject();
      }
      void this.start(accept(), { type: 'sftp' });
    });
  }

  private async start(ch: ServerChannel, what: { type: 'shell' } | { type: 'exec'; command: string } | { type: 'sftp' }): Promise<void> {
    const agent = this.agent;
    const session = agent.session;
    const untrack = agent.track(ch);
    ch.on('close', untrack);
    ch.on('error', () => undefined);
    const notices = agent.takeNotices();
    if (notices) ch.stderr.write(notices);
    if (session.failed || agent.terminated) {
      ch.stderr.write(agent.terminated ? 'flightlog: this connection was ended by the gateway\r\n' : `flightlog: ${REFUSED}\r\n`);
      ch.exit(1);
      ch.end();
      return;
    }
    let approved: { decision: PolicyDecision; held: PendingApproval; outcome: ApprovalOutcome } | null = null;
    if (what.type === 'exec') {
      const decision = agent.ctx.policy({ connection: agent.connectionName, protocol: 'ssh', identity: agent.identity, kind: 'exec', text: what.command });
      let approval: { held: PendingApproval; outcome: ApprovalOutcome } | null = null;
      if (decision.action === 'hold' && agent.ctx.holdForApproval) {
        const held = agent.ctx.holdForApproval({
          sessionId: session.id,
          identity: agent.identity,
          runId: agent.runId,
          commandText: agent.ctx.masker.maskText(what.command).text,
          ...holdTerms(decision),
        });
        // the client closed the channel or the connection ended: nobody waits for the command
        const gone = (): void => held.cancel();
        ch.once('close', gone);
        const outcome = await held.outcome;
        ch.off('close', gone);
        // the channel or the connection went away: nobody is left to tell, nothing to run
        if (outcome.by === 'cancelled') return;
        approval = { held: held.approval, outcome };
      }
      if (decision.action !== 'allow' && approval?.outcome.decision !== 'approve') {
        const cmd = session.startCommand({ kind: 'exec', text: what.command });
        const message = approval ? deniedMessage(decision.rule, approval.outcome) : blockedMessage(decision);
        if (approval) recordApprovalOutcome(session, decision, approval.held, approval.outcome, cmd.id);
        else session.finding({ category: 'guardrail', kind: decision.rule ?? 'policy', direction: 'gateway', commandId: cmd.id, detail: decisionDetail(decision, what.command) });
        cmd.finish({ status: 'blocked', error: message, result: { exitCode: 126 } });
        ch.stderr.write(`${message}\r\n`);
        await drained(ch.stderr);
        // 126: "found but not executable", what a shell answers for a command it will not run
        ch.exit(126);
        ch.end();
        return;
      }
      if (approval) approved = { decision, ...approval };
    }
    // Fail-closed: an exec is recorded, and the record committed, before it goes upstream.
    const execCmd = what.type === 'exec' ? startExec(session, what.command) : null;
    if (execCmd && approved) recordApprovalOutcome(session, approved.decision, approved.held, approved.outcome, execCmd.id);
    if (execCmd) {
      try {
        await session.flushed();
      } catch {
        agent.ctx.log.error(`ssh session ${session.id}: recording failed; exec not forwarded`);
        execCmd.finish({ status: 'blocked', error: REFUSED });
        ch.stderr.write(`flightlog: ${REFUSED}\r\n`);
        await drained(ch.stderr);
        ch.exit(1);
        ch.end();
        return;
      }
      if (agent.terminated) {
        execCmd.finish({ status: 'cancelled', error: 'the connection was ended by the gateway' });
        return;
      }
    }
    const client = await agent.upstreamFor(ch);
    if (!client) {
      execCmd?.finish({ status: 'error', error: 'no upstream login' });
      return;
    }
    let up: ClientChannel;
    try {
      up = await new Promise<ClientChannel>((resolve, reject) => {
        const cb = (err: Error | undefined, c: ClientChannel): void => (err ? reject(err) : resolve(c));
        const pty = this.pty ? { term: this.pty.term, rows: this.pty.rows, cols: this.pty.cols, width: this.pty.width, height: this.pty.height, modes: (this.pty as { modes?: object }).modes } : undefined;
        if (what.type === 'shell') client.shell(pty ?? false, { env: this.env }, cb);
        else if (what.type === 'exec') client.exec(what.command, { env: this.env, pty }, cb);
        else client.subsys('sftp', cb);
      });
    } catch (e) {
      const msg = `flightlog: the upstream host refused the ${what.type} request on connection '${agent.connectionName}': ${e instanceof Error ? e.message : String(e)}`;
      session.event('error', 'gateway', { message: msg });
      execCmd?.finish({ status: 'error', error: msg });
      ch.stderr.write(`${msg}\r\n`);
      ch.exit(1);
      ch.end();
      return;
    }
    this.up = up;
    if (what.type === 'sftp') return this.runSftp(ch, up);
    const bridge = bridgeChannel(agent, ch, up, what.type === 'exec' ? { kind: 'exec', command: what.command, started: execCmd ?? undefined } : { kind: 'shell', pty: this.pty !== null });
    this.onResize = bridge.resize;
  }

  private runSftp(ch: ServerChannel, up: ClientChannel): void {
    const agent = this.agent;
    agent.session.event('sftp', 'client→upstream', { op: 'subsystem' });
    const proxy = new SftpProxy(ch, up, {
      session: agent.session,
      sideChannel: () => agent.sftpSideChannel(),
      contentCap: FILE_CONTENT_CAP,
      decide: (sftp, text) => agent.ctx.policy({ connection: agent.connectionName, protocol: 'ssh', identity: agent.identity, kind: 'sftp', text, sftp }),
    });
    proxy.start();
    up.stderr.on('data', (c: Buffer) => ch.stderr.write(c));
    let exit: number | null = null;
    up.on('exit', (code: number | null) => (exit = code));
    ch.on('end', () => up.end());
    ch.on('close', () => up.close());
    up.on('close', () => {
      proxy.finish();
      void ended(up).then(() => drained(ch)).then(() => {
        if (exit !== null) ch.exit(exit);
        ch.end();
      });
    });
  }
}
