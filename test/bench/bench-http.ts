/**
 * HTTP listener benchmark: requests/s and p50/p99 for small JSON and 1 MB bodies, direct,
 * through a minimal node:http keep-alive reverse proxy, and through the gateway recording
 * everything; then RSS while streaming a 1 GB body through the gateway. Uses wrk.
 * Each run is short (3 s); the upstream runs in its own process so it does not share our loop.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestGateway } from '../helpers/gateway';
import { startBenchUpstream } from './http-upstream';

interface Figures {
  rps: number;
  p50: string;
  p99: string;
}

const run = promisify(execFile);
// BENCH_TARGETS=direct,proxy,gateway and BENCH_ONLY=small,1mb,light,1gb keep a subset (to profile one)
const TARGETS = process.env.BENCH_TARGETS ? new Set(process.env.BENCH_TARGETS.split(',')) : null;
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const want = (key: string): boolean => ONLY === null || ONLY.has(key);

// async on purpose: the gateway and the node proxy run in this process and must keep serving
async function wrk(url: string, headers: string[], connections: number): Promise<Figures> {
  const args = ['-t1', `-c${connections}`, '-d3s', '--latency'];
  for (const h of headers) args.push('-H', h);
  const { stdout: out } = await run('wrk', [...args, url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? '?';
  return { rps, p50, p99 };
}

function minimalProxy(port: number): Promise<http.Server> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

async function main(): Promise<void> {
  const upstream = await startBenchUpstream(JSON.stringify({ ok: true, items: [1, 2, 3], name: 'small json' }));
  const upPort = upstream.port;
  const proxy = await minimalProxy(upPort);
  const gw = await startTestGateway({
    connections: [{ name: 'bench', protocol: 'http', upstream: { url: `http://127.0.0.1:${upPort}`, headers: { 'x-api-key': { env: 'BENCH_KEY' } } }, identities: ['bench'] }],
    env: { BENCH_KEY: 'sk-bench-upstream-key-0123456789' },
  });
  const token = gw.addIdentity('bench');
  const g = gw.address('bench');
  const targets: [string, string, string[]][] = [
    ['direct', `http://127.0.0.1:${upPort}`, []],
    ['node proxy', `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, []],
    ['gateway', `http://${g.host}:${g.port}`, [`authorization: Bearer ${token}`]],
  ].filter(([name]) => !TARGETS || TARGETS.has((name as string).split(' ').pop() as string)) as [string, string, string[]][];
  const rows: string[] = [];
  const ratios: string[] = [];
  for (const [path, conns] of ([['/small', 16], ['/1mb', 4]] as const).filter(([p]) => want(p.slice(1)))) {
    const results: Record<string, Figures> = {};
    for (const [name, base, headers] of targets) {
      results[name] = await wrk(`${base}${path}`, headers, conns);
      rows.push(`${path.padEnd(7)} ${name.padEnd(11)} ${results[name].rps.toFixed(0).padStart(8)} req/s   p50 ${results[name].p50.padStart(8)}   p99 ${results[name].p99.padStart(8)}`);
    }
    if (results.gateway && results['node proxy'] && results.direct) ratios.push(`${path}: gateway/node-proxy = ${(results.gateway.rps / results['node proxy'].rps).toFixed(2)}×, node-proxy/direct = ${(results['node proxy'].rps / results.direct.rps).toFixed(2)}×`);
  }
  // light load latency: one connection
  const light: string[] = [];
  if (want('light')) for (const [name, base, headers] of targets) light.push(`${name} p99 ${(await wrk(`${base}/small`, headers, 1)).p99}`);

  // 1 GB through the gateway: memory must stay flat
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const t0 = Date.now();
  if (want('1gb')) await run('curl', ['-sS', '-o', '/dev/null', '-H', `authorization: Bearer ${token}`, `http://${g.host}:${g.port}/1gb`]);
  clearInterval(timer);
  const secs = (Date.now() - t0) / 1000;

  console.log('HTTP benchmark (wrk, 3 s per run, 1 thread; small: 16 connections, 1 MB: 4 connections)');
  for (const r of rows) console.log(`  ${r}`);
  for (const r of ratios) console.log(`  ${r}`);
  console.log(`  light load (1 connection): ${light.join(', ')}`);
  console.log(`  1 GB through the gateway in ${secs.toFixed(1)} s (${(1024 / secs).toFixed(0)} MB/s); RSS ${(rssBefore / 1e6).toFixed(0)} MB before, peak ${(peak / 1e6).toFixed(0)} MB`);

  await gw.close();
  proxy.close();
  upstream.stop();
}

main().catch((err: Error) => {
  console.error(`bench-http: ${err.message}`);
  process.exit(1);
});
