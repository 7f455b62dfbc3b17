/**
 * The Postgres listener: startup (SSLRequest, GSSENCRequest, CancelRequest), agent login with
 * its gateway token, upstream login with the connection's own credentials, then the relay.
 *
 * Client authentication is a cleartext password exchange (over TLS when the client asked for
 * it): the gateway stores only hashes of its tokens, and SCRAM or md5 verification would need
 * a password-equivalent verifier of each token, which the identity store does not keep.
 */
import { randomInt } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { PostgresUpstream } from '../config/schema';
import type { Listener, ListenerContext, StartListener } from '../core/listener';
import type { Json } from '../core/types';
import { parseStartupPacket, ProtocolError } from './client-messages';
import { Relay } from './relay';
import { loadSqlParser } from './sql-info';
import { ensureGatewayCert } from './tls-cert';
import { cancelUpstream, FrameReader, loginUpstream, UpstreamError } from './upstream';
import * as wire from './wire';

const STARTUP_TIMEOUT_MS = 30_000;

interface LiveConnection {
  socket: net.Socket;
  relay: Relay | null;
}

export const startPostgresListener: StartListener = async (ctx: ListenerContext): Promise<Listener> => {
  const up = ctx.connection.upstream as PostgresUpstream;
  await loadSqlParser();
  if (ctx.secrets.password) ctx.masker.addKnownSecret('postgres-password', ctx.secrets.password);
  const clientAuth = typeof ctx.connection.options?.clientAuth === 'string' ? ctx.connection.options.clientAuth : 'password';
  if (clientAuth !== 'password' && clientAuth !== 'cleartext') {
    ctx.log.warn(`postgres ${ctx.connection.name}: clientAuth ${clientAuth} needs a verifier of each token, which Flightlog does not keep; using password (over TLS when the client asks)`);
  }
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
    const fatal = (code: string, message: string): void => {
      reader.detach();
      client.end(wire.errorResponse({ severity: 'FATAL', code, message }));
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
          socket.end();
          const target = cancelKeys.get(`${pkt.pid}:${pkt.secret}`);
          if (target) await cancelUpstream(up, target.pid, target.secret).catch(() => undefined);
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

      client.write(wire.authRequest(3));
      const pw = await reader.frame(10000);
      if (pw.type !== 'p') throw new ProtocolError('expected a password message');
      const nul = pw.body.indexOf(0);
      if (nul !== pw.body.length - 1) throw new ProtocolError('invalid password packet');
      const token = pw.body.toString('utf8', 0, nul);
      const auth = ctx.authenticate(user, { token });
      if (!auth.ok) {
        ctx.recordFailedAttempt({ identity: user, clientAddr, reason: auth.reason ?? 'bad-credential' });
        if (auth.reason === 'not-allowed') return fatal('28000', `identity "${user}" is not allowed to use connection "${ctx.connection.name}"`);
        return fatal('28P01', `password authentication failed for user "${user}"`);
      }
      const identity = auth.identity ?? user;
      ctx.masker.addKnownSecret('gateway-token', token);

      const upParams: Record<string, string> = { ...params, user: up.user };
      delete upParams.replication;
      const database = up.database ?? (params.database && params.database !== user ? params.database : up.user);
      upParams.database = database;
      let login;
      try {
        login = await loginUpstream(up, ctx.secrets.password, upParams);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        const safe = ctx.masker.maskText(msg).text;
        ctx.log.warn(`postgres ${ctx.connection.name}: ${safe}`);
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
        clientAuth: 'password',
      };
      const session = ctx.openSession({ identity, clientAddr, meta, runId: auth.runId ?? null });
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
        ctx, session, identity, client, upstream: login.socket, clientLeftover, upstreamLeftover: login.leftover, txStatus: login.txStatus,
        onEnd: () => {
          cancelKeys.delete(key);
          live.delete(conn);
        },
      });
      conn.relay = relay;
      relay.start();
    } catch (err) {
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(ctx.connection.listen.port, ctx.connection.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as net.AddressInfo;
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
