/**
 * The MCP conformance suite (`@modelcontextprotocol/conformance server`) over Streamable HTTP,
 * direct and through the gateway, against the reference "everything" server and against a fixture
 * that implements the suite's own scenario tools (test/helpers/mcp-conformance-server.ts): every
 * check that passes direct must pass through the gateway. The suite's client cannot send a gateway token,
 * so a plain header pipe in front of the gateway adds `Authorization: Bearer TOKEN` (and keeps
 * every other header, Host and Origin included).
 *
 * Rerun by hand: node scripts/run-tests.js integration --filter mcp-conformance
 * (FLIGHTLOG_CONFORMANCE_OUT=FILE also writes both results as JSON, for docs/mcp-compatibility.md)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway';
import { startEverything, startHeaderPipe, type HeaderPipe, type McpServerProcess } from '../helpers/mcp-http-servers';
import { startConformanceServer, type ConformanceServer } from '../helpers/mcp-conformance-server';
import { tempDir } from '../helpers/tmp';

const CONFORMANCE = path.resolve(__dirname, '../../../node_modules/@modelcontextprotocol/conformance/dist/index.js');

type Status = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';
/** scenario → check id → status (a check id repeated within a scenario keeps its worst status) */
type Results = Record<string, Record<string, Status>>;

let gw: TestGateway;
let server: McpServerProcess;
let fixture: ConformanceServer;
const pipes: Record<string, HeaderPipe> = {};

before(async () => {
  server = await startEverything('streamableHttp');
  fixture = await startConformanceServer();
  gw = await startTestGateway({
    connections: [
      { name: 'everything', protocol: 'mcp', upstream: { url: server.url }, identities: ['conformance'] },
      { name: 'fixture', protocol: 'mcp', upstream: { url: fixture.url }, identities: ['conformance'] },
    ],
  });
  const token = gw.addIdentity('conformance');
  for (const name of ['everything', 'fixture']) {
    const a = gw.address(name);
    pipes[name] = await startHeaderPipe(`http://${a.host}:${a.port}`, { add: { authorization: `Bearer ${token}` }, keepHost: true });
  }
});

after(async () => {
  for (const p of Object.values(pipes)) await p.close();
  await gw?.close();
  await server?.stop();
  await fixture?.close();
});

/** Runs the suite against `url`; the per-scenario checks.json files are the results (the exit code is non-zero whenever any check fails). */
function runConformance(url: string): Promise<Results> {
  const out = tempDir('flightlog-conformance-');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CONFORMANCE, 'server', '--url', url, '-o', out], { timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (err) => {
      if (err && (err as { killed?: boolean }).killed) return reject(new Error('the conformance suite timed out'));
      const results: Results = {};
      const rank: Record<string, number> = { FAILURE: 4, WARNING: 3, SUCCESS: 2, INFO: 1, SKIPPED: 0 };
      for (const dir of fs.readdirSync(out)) {
        const scenario = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(dir)?.[1] ?? dir;
        const checks = JSON.parse(fs.readFileSync(path.join(out, dir, 'checks.json'), 'utf8')) as Array<{ id: string; status: Status }>;
        const r: Record<string, Status> = (results[scenario] = {});
        for (const c of checks) if (!r[c.id] || rank[c.status] > rank[r[c.id]]) r[c.id] = c.status;
      }
      fs.rmSync(out, { recursive: true, force: true });
      if (Object.keys(results).length === 0) return reject(new Error('the conformance suite wrote no results'));
      resolve(results);
    });
  });
}

function passed(r: Results): string[] {
  return Object.entries(r).flatMap(([s, checks]) => Object.entries(checks).filter(([, st]) => st === 'SUCCESS').map(([id]) => `${s}/${id}`));
}

const results: Record<string, { direct: Results; gateway: Results }> = {};

for (const name of ['everything', 'fixture']) {
  test(`${name}: every conformance check that passes direct passes through the gateway`, { timeout: 300_000 }, async () => {
    const direct = await runConformance(name === 'everything' ? server.url : fixture.url);
    const via = await runConformance(`${pipes[name].url}/mcp`);
    results[name] = { direct, gateway: via };
    if (process.env.FLIGHTLOG_CONFORMANCE_OUT) fs.writeFileSync(process.env.FLIGHTLOG_CONFORMANCE_OUT, JSON.stringify(results, null, 2));
    const lost = passed(direct).filter((id) => !passed(via).includes(id));
    assert.deepEqual(lost, [], 'checks that pass direct but not through the gateway');
    assert.ok(passed(direct).length >= (name === 'fixture' ? 35 : 10), `the suite ran (${passed(direct).length} checks passed direct)`);
    // the suite's traffic was recorded: its tool calls are mcp commands of this connection
    await gw.flush();
    const commands = gw.sessions().filter((s) => s.connection === name).flatMap((s) => gw.show(s.id).commands);
    assert.ok(commands.some((c) => c.kind === 'mcp' && c.text.startsWith(`${name}.`)), 'tool calls recorded');
  });
}
