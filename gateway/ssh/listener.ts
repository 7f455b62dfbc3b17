/**
 * The SSH listener: an ssh2 server the agent's plain OpenSSH clients log in to with a gateway
 * token (as the password) or a registered public key; each login becomes one recorded session
 * relayed to the connection's upstream host under the gateway's own credentials.
 */
// first: ssh2's cipher module must load with pooled padding (see the module)
import './ssh2-padding';
import { Server, utils, type AuthContext, type Connection } from 'ssh2';
import type { SshUpstream } from '../common/config-schema';
import type { Listener, ListenerContext, StartListener } from '../core/listener';
import type { AuthResult } from '../common/types';
import { AgentConnection } from './connection';
import { loadOrCreateHostKey } from './host-keys';
import { AGENT_LEG_CIPHERS } from './algorithms';
import { OpenFailDescriber, sendAuthBanner } from './ssh2-internals';
import { listenOn } from '../net-listen';

const METHODS: Array<'publickey' | 'password'> = ['publickey', 'password'];

function verifySignature(ctx: AuthContext): boolean {
  if (ctx.method !== 'publickey' || !ctx.signature || !ctx.blob) return false;
  const key = utils.parseKey(ctx.key.data);
  if (key instanceof Error) return false;
  const ok = key.verify(ctx.blob, ctx.signature, ctx.hashAlgo);
  return ok === true;
}

function refusalBanner(result: AuthResult, identity: string, connection: string): string | null {
  if (result.reason === 'not-allowed') return `flightlog: identity '${identity}' may not use connection '${connection}'`;
  if (result.reason === 'revoked') return `flightlog: the credentials of identity '${identity}' were revoked`;
  return null;
}

export const startSshListener: StartListener = async (ctx: ListenerContext): Promise<Listener> => {
  const upstream = ctx.connection.upstream as SshUpstream;
  if (ctx.secrets.password) ctx.masker.addKnownSecret('ssh-password', ctx.secrets.password);
  if (ctx.secrets.privateKey) ctx.masker.addKnownSecret('ssh-private-key', ctx.secrets.privateKey);
  const hostKey = loadOrCreateHostKey(ctx.dataDir);
  const name = ctx.connection.name;
  const live = new Set<AgentConnection>();
  const sockets = new Set<Connection>();

  const server = new Server({ hostKeys: [hostKey], ident: 'flightlog', algorithms: { cipher: AGENT_LEG_CIPHERS } }, (conn, info) => {
    sockets.add(conn);
    // Nagle plus the peer's delayed ACK holds each small SSH packet ~40 ms: request/response
    // traffic (sftp, scp -r, a tunnelled database) would crawl. ssh2 has it, its typings do not.
    (conn as Connection & { setNoDelay?(on: boolean): void }).setNoDelay?.(true);
    // The agent's leg writes each packet as ssh2 sends it: coalesced, a revocation notice could
    // share a segment with the close and disconnect after it, and OpenSSH then exits before
    // printing it (seen in CI). The upstream leg coalesces (gateway/ssh/upstream.ts).
    const clientAddr = `${info.ip}:${info.port}`;
    const describer = new OpenFailDescriber();
    describer.install(conn);
    let agent: AgentConnection | null = null;
    let identity: string | null = null;
    let user = '';
    let runId: string | null = null;
    let keyFailureRecorded = false;
    let bannerSent = false;

    const fail = (authCtx: AuthContext, result: AuthResult, recordIt: boolean): void => {
      const banner = refusalBanner(result, authCtx.username, name);
      if (banner && !bannerSent) bannerSent = sendAuthBanner(authCtx, banner);
      if (recordIt) {
        ctx.recordFailedAttempt({ identity: authCtx.username || null, clientAddr, reason: result.reason ?? 'bad-credential' });
      }
      authCtx.reject(METHODS);
    };

    conn.on('authentication', (authCtx: AuthContext) => {
      if (authCtx.method === 'password') {
        const result = ctx.authenticate(authCtx.username, { token: authCtx.password });
        if (!result.ok) return fail(authCtx, result, true);
        identity = result.identity ?? authCtx.username;
        runId = result.runId ?? null;
        user = authCtx.username;
        return authCtx.accept();
      }
      if (authCtx.method === 'publickey') {
        const result = ctx.authenticate(authCtx.username, { publicKey: { algo: authCtx.key.algo, data: new Uint8Array(authCtx.key.data) } });
        if (!result.ok) {
          // Clients offer every key they hold; count one failed attempt per connection, not per key.
          const record = result.reason === 'not-allowed' || !keyFailureRecorded;
          keyFailureRecorded = true;
          return fail(authCtx, result, record);
        }
        if (!authCtx.signature) return authCtx.accept(); // "this key would do": the client then signs
        if (!verifySignature(authCtx)) {
          return fail(authCtx, { ok: false, reason: 'bad-credential' }, true);
        }
        identity = result.identity ?? authCtx.username;
        user = authCtx.username;
        return authCtx.accept();
      }
      authCtx.reject(METHODS);
    });

    conn.on('ready', () => {
      agent = new AgentConnection(ctx, conn, identity ?? user, describer, { clientAddr, user, software: info.header?.versions?.software, runId });
      live.add(agent);
      ctx.log.info(`ssh ${name}: ${identity} connected from ${clientAddr} (upstream ${upstream.user}@${upstream.host}:${upstream.port})`);
    });
    conn.on('error', (err: Error) => {
      ctx.log.warn(`ssh ${name}: client ${clientAddr}: ${err.message}`);
    });
    conn.on('close', () => {
      sockets.delete(conn);
      if (agent) {
        live.delete(agent);
        agent.close('closed', 'agent disconnected');
      }
    });
  });

  const addr = await listenOn(server, ctx.connection.listen);
  server.on('error', (err: Error) => ctx.log.error(`ssh ${name}: ${err.message}`));
  ctx.log.info(`ssh ${name}: listening on ${addr.address}:${addr.port}`);

  return {
    address: `${addr.address}:${addr.port}`,
    async close(): Promise<void> {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const a of live) a.close('closed', 'gateway shutting down');
      live.clear();
      for (const c of sockets) c.end();
      await closing;
    },
  };
};
