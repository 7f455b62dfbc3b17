/**
 * The pipe's side of the wire against a scripted gateway: control lines (hello reply, server
 * stderr, the end) are told from MCP bytes however TCP cuts them, and MCP bytes reach stdout
 * unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { runMcpCommand } from '../../gateway/cli/mcp-command';
import { announceFile, controlLine } from '../../gateway/mcp/stdio-listener';
import { tempDir } from '../helpers/tmp';

async function scriptedGateway(script: (socket: net.Socket, hello: string) => Promise<void>): Promise<{ dataDir: string; close(): Promise<void> }> {
  const dataDir = tempDir('flightlog-mcp-pipe-');
  const server = net.createServer((socket) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      socket.off('data', onData);
      void script(socket, buf.slice(0, nl));
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  fs.writeFileSync(path.join(dataDir, 'control.json'), JSON.stringify({ url: 'http://127.0.0.1:1', pid: process.pid }));
  fs.mkdirSync(path.join(dataDir, 'mcp'));
  fs.writeFileSync(announceFile(dataDir, 'tools'), JSON.stringify({ address: `127.0.0.1:${port}`, pid: process.pid }));
  return {
    dataDir,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Writes `bytes` one byte per write, each flushed on its own. */
async function trickle(socket: net.Socket, bytes: Buffer): Promise<void> {
  for (const b of bytes) {
    await new Promise<void>((r) => socket.write(Buffer.from([b]), () => r()));
  }
}

test('control lines and MCP bytes are told apart however the stream is cut', async () => {
  const mcpOut = '{"jsonrpc":"2.0","id":1,"result":{"text":"é ✓"}}\n{"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n';
  let helloSeen = '';
  let fromAgent = '';
  const gw = await scriptedGateway(async (socket, hello) => {
    helloSeen = hello;
    const agentLine = new Promise<void>((resolve) =>
      socket.on('data', (d: Buffer) => {
        fromAgent += d.toString();
        if (fromAgent.endsWith('\n')) resolve();
      }),
    );
    await trickle(socket, Buffer.concat([controlLine({ ok: true, sessionId: 'ses_x' }), Buffer.from(mcpOut.slice(0, 30)), Buffer.from(mcpOut.slice(30))]));
    // the session ends once the agent's first message is in (what it sends after the end is moot)
    await agentLine;
    await trickle(socket, Buffer.concat([controlLine({ stderr: 'server says hi\n' }), controlLine({ end: 'flightlog: the MCP server exited (code 3)' })]));
    socket.end();
  });
  try {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d: Buffer) => (out += d.toString()));
    stderr.on('data', (d: Buffer) => (err += d.toString()));
    stdin.write('{"jsonrpc":"2.0","id":1,"method":"ping"}\n');
    const code = await runMcpCommand(['--connection', 'tools', '--data-dir', gw.dataDir], { stdin, stdout, stderr, env: { FLIGHTLOG_TOKEN: 'flt_x', FLIGHTLOG_IDENTITY: 'claude' } });
    assert.equal(code, 1);
    assert.equal(out, mcpOut, 'MCP bytes unchanged, no control byte among them');
    assert.equal(err, 'server says hi\nflightlog: the MCP server exited (code 3)\n');
    assert.deepEqual(JSON.parse(helloSeen), { flightlog: 'mcp-pipe', version: 1, connection: 'tools', identity: 'claude', token: 'flt_x', pid: process.pid });
    assert.equal(fromAgent, '{"jsonrpc":"2.0","id":1,"method":"ping"}\n', 'what the agent wrote before the gateway accepted is relayed after');
  } finally {
    await gw.close();
  }
});

test('a refusal is one line and nothing reaches stdout; a stale announcement is one line too', async () => {
  const gw = await scriptedGateway(async (socket) => {
    socket.end(controlLine({ ok: false, code: 'E_MCP_REVOKED', message: 'the token of identity "claude" was revoked' }));
  });
  try {
    const io = () => {
      const o = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough(), out: '', err: '' };
      o.stdout.on('data', (d: Buffer) => (o.out += d.toString()));
      o.stderr.on('data', (d: Buffer) => (o.err += d.toString()));
      return o;
    };
    const a = io();
    assert.equal(await runMcpCommand(['--connection', 'tools', '--data-dir', gw.dataDir], { ...a, env: { FLIGHTLOG_TOKEN: 'flt_x', FLIGHTLOG_IDENTITY: 'claude' } }), 1);
    assert.equal(a.out, '');
    assert.equal(a.err, 'flightlog: the token of identity "claude" was revoked\n');
    await gw.close();
    const b = io();
    assert.equal(await runMcpCommand(['--connection', 'tools', '--data-dir', gw.dataDir], { ...b, env: { FLIGHTLOG_TOKEN: 'flt_x', FLIGHTLOG_IDENTITY: 'claude' } }), 1);
    assert.match(b.err, /^flightlog: the gateway does not answer on 127\.0\.0\.1:\d+ \(ECONNREFUSED\): is it still running\?\n$/);
  } finally {
    await gw.close().catch(() => undefined);
  }
});
