/**
 * The Postgres listener: startup (SSLRequest, GSSENCRequest, CancelRequest), agent login with
 * its gateway token, upstream login with the connection's own credentials, then the relay.
 *
 * Client authentication is SCRAM-SHA-256 (never -PLUS: the gateway's certificate is its own, so
 * binding to it proves nothing the client can check), against the per-token verifiers the store
 * keeps (StoredKey/ServerKey, as pg_authid). Cleartext (over TLS when the client asks) is used
 * when options.clientAuth is 'password', or for an identity whose tokens predate verifiers. md5
 * would need a password-equivalent of each token, which is never kept: it falls back to SCRAM.
 * A name that is no identity gets the same SCRAM exchange under a mock salt (as PostgreSQL
 * does) and fails at the proof like a wrong token, so names cannot be enumerated.
 */
import { randomBytes, randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { PostgresUpstream } from '../common/config-schema';
import type { Listener, ListenerContext, ScramVerifierSet, StartListener } from '../core/listener';
import type { AuthResult, Json } from '../common/types';
import { parseStartupPacket, ProtocolError } from './client-messages';
import { decodeFields } from './server-messages';
import { Relay } from './relay';
import { ScramError, scramMockCandidates, ScramServer } from '../core/scram';
import { loadSqlParser } from './sql-info';
import { ensureGatewayCert } from './tls-cert';
import { cancelUpstream, FrameReader, loginUpstream, UpstreamError } from './upstream';
import { explainEstimate } from './explain';
import * as wire from './wire';
import { listenOn } from '../net-listen';

const STARTUP_TIMEOUT_MS = 30_000;

interface LiveConnection {
  socket: net.Socket;
  relay: Relay | null;
}

export const startPostgresListener: StartListener = async (ctx: ListenerContext): Promise<Listener> => {
  const up = ctx.connection.upstream as PostgresUpstream;
  await loadSqlParser();
  if (ctx.secrets.password) ctx.masker.addKnownSecret('postgres-password', ctx.secrets.password);
  const clientAuth = typeof ctx.connection.options?.clientAuth === 'string' ? ctx.connection.options.clientAuth.toLowerCase() : 'scram-sha-256';
  let useScram = clientAuth !== 'password' && clientAuth !== 'cleartext';
  if (clientAuth === 'md5') {
    ctx.log.warn(`postgres ${ctx.connection.name}: clientAuth md5 needs a password-equivalent of each token, which Flightlog never keeps; using scram-sha-256`);
  } else if (useScram && clientAuth !== 'scram-sha-256') {
    ctx.log.warn(`postgres ${ctx.connection.name}: unknown clientAuth "${clientAuth}" (use scram-sha-256 or password); using scram-sha-256`);
  }
  if (useScram && (!ctx.scramVerifiers || !ctx.authenticateScramToken)) useScram = false;
  const mockKey = useScram ? loadMockAuthKey(ctx.dataDir) : null;
  const cert = ensureGatewayCert(ctx.dataDir);
  if (!cert) ctx.log.warn(`postgres ${ctx.connection.name}: openssl not found, TLS to clients is off (plain connections only)`);
  const secureContext = cert ? tls.createSecureContext({ cert: cert.cert, key: cert.key }) : null;

  /** gateway cancel key → upstream cancel key */
  const cancelKeys = new Map<string, { pid: number; secret: number }>();
  const live = new Set<LiveConnection>();

  const handle = async (socket: net.Socket): Promise<void> => {
    const conn: LiveConnection = { socket, relay: null };
    live.add(conn);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => live.delete(conn));
    const clientAddr = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    const timer = setTimeout(() => socket.destroy(), STARTUP_TIMEOUT_MS);
    let client: Duplex = socket;
    let reader = new FrameReader(client);
    let clientTls = false;
    /** afterAuthOk: PostgreSQL checks the database after AuthenticationOk, and libpq only retries
     *  (sslmode prefer, allow) on an error that comes before it; refuse in the same order */
    const fatal = (code: string, message: string, detail?: string, afterAuthOk = false): void => {
      reader.detach();
      const error = wire.errorResponse({ severity: 'FATAL', code, message, detail });
      client.end(afterAuthOk ? Buffer.concat([wire.authRequest(0), error]) : error);
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    try {
      let params: Record<string, string> | null = null;
      for (let round = 0; round < 3 && !params; round++) {
        const pkt = parseStartupPacket(await reader.startupPacket());
        if (pkt.kind === 'ssl') {
          if (!secureContext || clientTls) {
            client.write('N');
            continue;
          }
          // bytes sent before the handshake would bypass TLS (CVE-2021-23214): refuse them
          if (reader.buffered) throw new ProtocolError('unencrypted data after SSL request');
          reader.detach();
          client.write('S');
          const tlsSocket = new tls.TLSSocket(socket, { isServer: true, secureContext });
          tlsSocket.on('error', () => socket.destroy());
          client = tlsSocket;
          clientTls = true;
          reader = new FrameReader(client);
        } else if (pkt.kind === 'gssenc') {
          client.write('N');
        } else if (pkt.kind === 'cancel') {
          reader.detach();
          // as the postmaster: forward first, then close, so a client that waits for EOF (libpq 18's
          // cancel API) knows the cancel went out; end() on the TLS socket sends close_notify
          const target = cancelKeys.get(`${pkt.pid}:${pkt.secret}`);
          if (target) await cancelUpstream(up, target.pid, target.secret).catch(() => undefined);
          client.end();
          setTimeout(() => socket.destroy(), 1000).unref();
          return;
        } else {
          params = pkt.params;
        }
      }
      if (!params) throw new ProtocolError('too many startup negotiation packets');
      const user = params.user;
      if (!user) return fatal('28000', 'no PostgreSQL user name specified in startup packet');
      if (params.replication && params.replication !== 'false' && params.replication !== 'off') {
        return fatal('08P01', 'replication connections are not supported through Flightlog');
      }

      let verifiers = useScram && ctx.scramVerifiers ? ctx.scramVerifiers(user) : null;
      // identities whose tokens predate verifiers stay on cleartext; any other name gets the mock
      const mock = useScram && !verifiers && mockKey !== null && !(ctx.knownIdentity?.(user) ?? false);
      if (mock && mockKey) {
        const m = scramMockCandidates(mockKey, user);
        verifiers = { salt: m.salt, iterations: m.iterations, verifiers: m.verifiers.map((v) => ({ tokenId: -1, ...v })) };
      }
      let auth: AuthResult;
      let method: 'scram-sha-256' | 'password';
      let saslFinal: Buffer | null = null;
      if (verifiers && ctx.authenticateScramToken) {
        method = 'scram-sha-256';
        let matched: { id: number; serverFinal: string } | null;
        try {
          matched = await scramExchange(client, reader, verifiers);
        } catch (err) {
          if (!(err instanceof ScramError)) throw err;
          ctx.recordFailedAttempt({ identity: user, clientAddr, reason: 'scram-protocol' });
          return fatal('08P01', err.message);
        }
        if (mock) auth = { ok: false, reason: 'unknown-identity' };
        else auth = matched ? ctx.authenticateScramToken(user, matched.id) : { ok: false, reason: 'bad-credential' };
        if (matched && auth.ok) saslFinal = wire.authRequest(12, Buffer.from(matched.serverFinal, 'utf8'));
      } else {
        method = 'password';
        client.write(wire.authRequest(3));
        const pw = await reader.frame(10000);
        if (pw.type !== 'p') throw new ProtocolError('expected a password message');
        const nul = pw.body.indexOf(0);
        if (nul !== pw.body.length - 1) throw new ProtocolError('invalid password packet');
        const token = pw.body.toString('utf8', 0, nul);
        auth = ctx.authenticate(user, { token });
      }
      if (!auth.ok) {
        ctx.recordFailedAttempt({ identity: user, clientAddr, reason: auth.reason ?? 'bad-credential' });
        if (auth.reason === 'not-allowed') return fatal('28000', `identity "${user}" is not allowed to use connection "${ctx.connection.name}"`);
        return fatal('28P01', `password authentication failed for user "${user}"`);
      }
      // the client checks the server signature now; AuthenticationOk follows once upstream is in
      if (saslFinal) client.write(saslFinal);
      const identity = auth.identity ?? user;

      const upParams: Record<string, string> = { ...params, user: up.user };
      delete upParams.replication;
      const choice = chooseDatabase(up, params.database, user);
      if ('refused' in choice) {
        ctx.recordFailedAttempt({ identity, clientAddr, reason: 'database-not-allowed' });
        return fatal('3D000', `database "${choice.refused}" does not exist`, `Flightlog connection "${ctx.connection.name}" allows only: ${choice.allowed.join(', ')}`, true);
      }
      const database = choice.database;
      upParams.database = database;
      let login;
      try {
        login = await loginUpstream(up, ctx.secrets.password, upParams);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        const safe = ctx.masker.maskText(msg).text;
        ctx.log.warn(`postgres ${ctx.connection.name}: ${safe}`);
        const relayed = err instanceof UpstreamError ? serverRefusal(err, (t) => ctx.masker.maskText(t).text) : null;
        if (relayed) return fatal(relayed.code, relayed.message, relayed.detail, relayed.afterAuthOk);
        return fatal(err instanceof UpstreamError && err.code === 'PG_UPSTREAM_LOGIN' ? '08004' : '08006', `Flightlog: ${safe}`);
      }
      if (socket.destroyed) {
        login.socket.destroy();
        return;
      }
      const meta: Record<string, Json> = {
        database,
        upstreamUser: up.user,
        clientUser: user,
        applicationName: params.application_name ?? null,
        clientTls,
        upstreamTls: login.tls,
        clientAuth: method,
      };
      const session = ctx.openSession({ identity, clientAddr, meta, runId: auth.runId ?? null, via: auth.via });
      let key = '';
      let pid = 0;
      let secret = 0;
      do {
        pid = randomInt(1, 0x7fffffff);
        secret = randomInt(-0x80000000, 0x7fffffff);
        key = `${pid}:${secret}`;
      } while (cancelKeys.has(key));
      cancelKeys.set(key, { pid: login.pid, secret: login.secret });
      clearTimeout(timer);
      const clientLeftover = reader.detach();
      client.write(Buffer.concat([wire.authRequest(0), ...login.startupFrames, wire.backendKeyData(pid, secret), wire.readyForQuery(login.txStatus)]));
      login.socket.setMaxListeners?.(20);
      const relay = new Relay({
        ctx, session, identity, runId: auth.runId ?? null, client, upstream: login.socket, clientLeftover, upstreamLeftover: login.leftover, txStatus: login.txStatus,
        onEnd: () => {
          cancelKeys.delete(key);
          live.delete(conn);
        },
        // the server's error text can quote the statement: it goes through the masker like any text shown
        explain: (sql, safeMessages) =>
          explainEstimate(up, ctx.secrets.password, database, sql, { safeMessages }).then((d) => (d.estimateError ? { ...d, estimateError: ctx.masker.maskText(d.estimateError).text } : d)),
      });
      conn.relay = relay;
      relay.start();
    } catch (err) {
      // as PostgreSQL: a bad startup length (a stray Terminate, a TLS hello, garbage) is only
      // logged server-side, and the connection closes without a reply
      if (err instanceof UpstreamError && err.code === 'PG_BAD_STARTUP') {
        reader.detach();
        client.end();
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
      if (err instanceof ProtocolError) return fatal('08P01', err.message);
      if (err instanceof UpstreamError && err.code === 'PG_PROTOCOL') return fatal('08P01', err.message);
      socket.destroy();
    } finally {
      clearTimeout(timer);
    }
  };

  const server = net.createServer((socket) => {
    handle(socket).catch(() => socket.destroy());
  });
  const addr = await listenOn(server, ctx.connection.listen);
  const address = `${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`;
  ctx.log.info(`postgres ${ctx.connection.name} listening on ${address}${cert ? ' (TLS offered)' : ''}`);

  return {
    address,
    async close(): Promise<void> {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of [...live]) {
        if (c.relay) c.relay.shutdown('the Flightlog gateway is stopping');
        c.socket.destroy();
      }
      live.clear();
      await closed;
    },
  };
};

/**
 * The server's own refusal at login, as the client would get it direct (3D000 for a database
 * that does not exist, 53300 too many connections, 57P03 starting up…), so clients that act on
 * the SQLSTATE still can. Authentication failures (class 28) stay the gateway's: they concern
 * the connection's credentials, not the agent's.
 */
function serverRefusal(err: UpstreamError, mask: (text: string) => string): { code: string; message: string; detail?: string; afterAuthOk: boolean } | null {
  if (!err.serverError) return null;
  const raw = err.serverError;
  const f = decodeFields(raw, 5, raw.length);
  if (!f.C || !f.M || f.C.startsWith('28')) return null;
  return { code: f.C, message: mask(f.M), detail: f.D ? mask(f.D) : undefined, afterAuthOk: err.afterAuthOk };
}

/**
 * The upstream database for a client's startup `database`: its own choice when the connection
 * lists it, the connection's default when it named none (libpq then sends the user name), and
 * a refusal otherwise, never a silent switch. With no database configured at all, the client's
 * choice passes through.
 */
export function chooseDatabase(
  up: PostgresUpstream,
  requested: string | undefined,
  user: string,
): { database: string } | { refused: string; allowed: string[] } {
  const allowed = up.databases ?? (up.database !== undefined ? [up.database] : null);
  if (requested && allowed?.includes(requested)) return { database: requested };
  if (!requested || requested === user) return { database: up.database ?? allowed?.[0] ?? up.user };
  if (!allowed) return { database: requested };
  return { refused: requested, allowed };
}

/**
 * The key behind mock SCRAM salts, kept in the data dir (0600) so a name's mock salt survives
 * restarts just as a real identity's salt does; a salt that changed on restart would tell.
 */
function loadMockAuthKey(dataDir: string): Buffer {
  const file = path.join(dataDir, 'postgres-mock-auth.key');
  try {
    const key = fs.readFileSync(file);
    if (key.length >= 32) return key;
  } catch {
    /* created below */
  }
  const key = randomBytes(32);
  try {
    fs.writeFileSync(`${file}.tmp`, key, { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
  } catch {
    // a read-only data dir still gets mock salts, stable for this run
  }
  return key;
}

/**
 * The server side of SCRAM-SHA-256 on the wire: AuthenticationSASL (SCRAM-SHA-256 only),
 * SASLInitialResponse, AuthenticationSASLContinue, SASLResponse. Returns the token whose proof
 * matched and the server-final message to send, or null when none matched.
 */
async function scramExchange(
  client: Duplex,
  reader: FrameReader,
  set: ScramVerifierSet,
): Promise<{ id: number; serverFinal: string } | null> {
  const server = new ScramServer({
    salt: set.salt,
    iterations: set.iterations,
    verifiers: set.verifiers.map((v) => ({ id: v.tokenId, storedKey: v.storedKey, serverKey: v.serverKey })),
  });
  client.write(wire.authRequest(10, Buffer.concat([wire.cstr('SCRAM-SHA-256'), Buffer.from([0])])));
  const init = await reader.frame(10000);
  if (init.type !== 'p') throw new ProtocolError('expected a SASLInitialResponse message');
  const nul = init.body.indexOf(0);
  if (nul < 0 || init.body.length < nul + 5) throw new ProtocolError('invalid SASLInitialResponse message');
  const mechanism = init.body.toString('utf8', 0, nul);
  if (mechanism !== 'SCRAM-SHA-256') throw new ProtocolError(`client selected an invalid SASL authentication mechanism "${mechanism.slice(0, 40)}"`);
  const len = init.body.readInt32BE(nul + 1);
  if (len < 0 || nul + 5 + len !== init.body.length) throw new ProtocolError('invalid SASLInitialResponse message');
  const serverFirst = server.first(init.body.toString('utf8', nul + 5));
  client.write(wire.authRequest(11, Buffer.from(serverFirst, 'utf8')));
  const resp = await reader.frame(10000);
  if (resp.type !== 'p') throw new ProtocolError('expected a SASLResponse message');
  return server.final(resp.body.toString('utf8'));
}
