/**
 * Kubernetes gateway benchmark: real kubectl, `get pods -A` over 2,000 pods and a 100 MB `logs`
 * stream, straight to the fixture API server and through the gateway (recording everything), as
 * ratios (direct time / gateway time; goal ≥ 0.8×) over BENCH_RUNS runs (default 3). The fixture
 * runs in its own process so it does not share the gateway's loop; the gateway's CPU time per run
 * comes from /proc/self/stat.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTestGateway } from '../helpers/gateway';
import { tempDir } from '../helpers/tmp';
import { agentKubeconfig } from '../../gateway/kubernetes/kubeconfig';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PODS = 2000;
const LOG_MB = 100;

const FIXTURE = (dir: string): string => `
const { startKubeFixture } = require(${JSON.stringify(path.resolve(__dirname, '../helpers/kube-fixture'))});
(async () => {
  const fx = await startKubeFixture({ dir: ${JSON.stringify(dir)} });
  fx.seedPods('default', ${PODS});
  const chunk = Buffer.alloc(64 * 1024, 'log line of a busy service, padded to look like one\\n');
  fx.setLogs('default', 'seed-0', function* () { for (let i = 0; i < ${LOG_MB} * 16; i++) yield chunk; });
  process.stdout.write(JSON.stringify({ url: fx.url, token: fx.token, caFile: fx.caFile, kubeconfig: fx.kubeconfig }) + '\\n');
  process.on('SIGTERM', () => fx.close().then(() => process.exit(0)));
})();
`;

/** user+system CPU seconds of this process (the gateway runs here) */
function cpuSeconds(): number {
  const fields = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  // utime and stime, in clock ticks (100 per second on Linux)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function kubectl(kubeconfig: string, home: string, args: string[]): Promise<{ ms: number; bytes: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, ...args], { env: { ...process.env, HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    let bytes = 0;
    let err = '';
    child.stdout.on('data', (d: Buffer) => (bytes += d.length));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`kubectl ${args.join(' ')}: ${err.trim()}`));
      resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes });
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const work = tempDir('flightlog-bench-kube-');
  const child = spawn(process.execPath, ['-e', FIXTURE(path.join(work, 'fixture'))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fx = await new Promise<{ url: string; token: string; caFile: string; kubeconfig: string }>((resolve) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]) as { url: string; token: string; caFile: string; kubeconfig: string });
    });
  });
  const gw = await startTestGateway({
    env: { FX_TOKEN: fx.token },
    connections: [{ name: 'bench', protocol: 'kubernetes', upstream: { server: fx.url, token: { env: 'FX_TOKEN' }, ca: { file: fx.caFile } }, identities: ['bench'] }],
  });
  const token = gw.addIdentity('bench');
  const a = gw.address('bench');
  const viaGateway = path.join(work, 'kubeconfig-gateway');
  fs.writeFileSync(viaGateway, agentKubeconfig([{ name: 'bench', address: `${a.host}:${a.port}` }], 'bench', token, fs.readFileSync(path.join(gw.dataDir, 'postgres-tls', 'gateway-cert.pem'), 'utf8')));
  const cases: Array<[string, string[]]> = [
    [`get pods -A (${PODS} pods)`, ['get', 'pods', '-A', '--chunk-size=500']],
    [`logs (${LOG_MB} MB)`, ['logs', 'seed-0', '-n', 'default']],
  ];
  // warm both paths (discovery cache, TLS, the fixture's JIT)
  for (const [, args] of cases) {
    await kubectl(fx.kubeconfig, work, args);
    await kubectl(viaGateway, work, args);
  }
  console.log(`Kubernetes benchmark: real kubectl ${RUNS} runs each, fixture API server in its own process; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (const [name, args] of cases) {
    const direct: number[] = [];
    const gateway: number[] = [];
    const cpu: number[] = [];
    let bytes = 0;
    for (let i = 0; i < RUNS; i++) {
      direct.push((await kubectl(fx.kubeconfig, work, args)).ms);
      const c0 = cpuSeconds();
      const g = await kubectl(viaGateway, work, args);
      cpu.push((cpuSeconds() - c0) * 1000);
      gateway.push(g.ms);
      bytes = g.bytes;
    }
    const ratios = direct.map((d, i) => d / gateway[i]);
    console.log(
      `  ${name.padEnd(26)} direct ${median(direct).toFixed(0).padStart(6)} ms  gateway ${median(gateway).toFixed(0).padStart(6)} ms  ratio ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}× (median ${median(ratios).toFixed(2)}×)  gateway CPU ${median(cpu).toFixed(0)} ms/run  output ${(bytes / 1e6).toFixed(1)} MB`,
    );
  }
  console.log(`  load average after: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  await gw.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

main().catch((err: Error) => {
  console.error(`bench-kube: ${err.message}`);
  process.exit(1);
});
