/**
 * MCP stdio benchmark: the latency a `tools/call` gains through `flightlog mcp` and the gateway,
 * recorded and masked, against the same server spawned direct. The gateway runs as its own
 * process (`flightlog gateway`, as a user starts it); the SDK client runs here and calls a small
 * `echo` tool one call at a time. Runs interleave direct and gateway; CPU per call of the gateway
 * and the pipe comes from /proc/PID/stat.
 *
 * BENCH_CALLS (default 2000) calls per run, BENCH_RUNS (default 3) runs.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';

const ROOT = path.resolve(__dirname, '../../..');
const CLI = path.join(ROOT, 'bin/flightlog.js');
const SERVER = path.join(ROOT, 'dist/test/helpers/mcp-test-server.js');
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WARMUP = 200;
const TICK = 100; // USER_HZ on Linux

function cpuMs(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / TICK;
  } catch {
    return NaN;
  }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function until<T>(what: string, fn: () => T | null, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface RunFigures {
  p50: number;
  p99: number;
  /** CPU ms per call of the processes in between (gateway, pipe) */
  gatewayCpuUs?: number;
  pipeCpuUs?: number;
}

async function measure(command: string, args: string[], env: Record<string, string>, gatewayPid?: number): Promise<RunFigures> {
  const transport = new StdioClientTransport({ command, args, env: { ...getDefaultEnvironment(), ...env }, stderr: 'inherit' });
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(transport);
  for (let i = 0; i < WARMUP; i++) await client.callTool({ name: 'echo', arguments: { text: `warm ${i}` } });
  const times: number[] = [];
  const g0 = cpuMs(gatewayPid);
  const p0 = cpuMs(transport.pid ?? undefined);
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    await client.callTool({ name: 'echo', arguments: { text: `call ${i}`, n: i } });
    times.push(performance.now() - t);
  }
  const g1 = cpuMs(gatewayPid);
  const p1 = cpuMs(transport.pid ?? undefined);
  await client.close();
  times.sort((a, b) => a - b);
  const out: RunFigures = { p50: pct(times, 0.5), p99: pct(times, 0.99) };
  if (gatewayPid) {
    out.gatewayCpuUs = ((g1 - g0) * 1000) / CALLS;
    out.pipeCpuUs = ((p1 - p0) * 1000) / CALLS;
  }
  return out;
}

const range = (xs: number[], digits = 3): string => {
  const s = [...xs].sort((a, b) => a - b);
  return s[0] === s[s.length - 1] ? s[0].toFixed(digits) : `${s[0].toFixed(digits)}–${s[s.length - 1].toFixed(digits)}`;
};

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flightlog-bench-mcp-'));
  let gateway: ChildProcess | null = null;
  try {
    const config = path.join(dataDir, 'flightlog.yaml');
    fs.writeFileSync(config, `connections:\n  - name: bench\n    protocol: mcp\n    upstream: { command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(SERVER)}] }\n    identities: [bench]\n`);
    const token = execFileSync(process.execPath, [CLI, 'identity', 'add', 'bench', '--kind', 'agent', '--data-dir', dataDir], { encoding: 'utf8' }).trim();
    // BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the gateway
    const nodeArgs = process.env.BENCH_GATEWAY_NODE_ARGS ? process.env.BENCH_GATEWAY_NODE_ARGS.split(' ') : [];
    gateway = spawn(process.execPath, [...nodeArgs, CLI, 'gateway', '--config', config, '--data-dir', dataDir], { stdio: ['ignore', 'ignore', 'inherit'] });
    await until('the gateway', () => (fs.existsSync(path.join(dataDir, 'mcp', 'bench.json')) ? true : null));
    const direct: RunFigures[] = [];
    const through: RunFigures[] = [];
    for (let r = 0; r < RUNS; r++) {
      direct.push(await measure(process.execPath, [SERVER], {}));
      through.push(await measure(process.execPath, [CLI, 'mcp', '--connection', 'bench', '--data-dir', dataDir], { FLIGHTLOG_TOKEN: token, FLIGHTLOG_IDENTITY: 'bench' }, gateway.pid));
    }
    const added = through.map((t, i) => t.p50 - direct[i].p50);
    const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
    process.stdout.write(
      [
        `MCP stdio tools/call, ${CALLS} sequential calls per run, ${RUNS} runs (load average ${load})`,
        `  direct            p50 ${range(direct.map((d) => d.p50))} ms   p99 ${range(direct.map((d) => d.p99))} ms`,
        `  through gateway   p50 ${range(through.map((d) => d.p50))} ms   p99 ${range(through.map((d) => d.p99))} ms`,
        `  added per call    p50 ${range(added)} ms`,
        `  CPU per call      gateway ${range(through.map((d) => d.gatewayCpuUs!), 0)} µs   pipe ${range(through.map((d) => d.pipeCpuUs!), 0)} µs`,
        '',
      ].join('\n'),
    );
  } finally {
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((r) => gateway!.once('exit', r));
      gateway.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench-mcp: ${err.message}\n`);
  process.exit(1);
});
