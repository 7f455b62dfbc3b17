/**
 * SSH through the gateway (recording on) against the same sshd direct, in one run.
 *
 * Latency (FLIGHTLOG_BENCH_RUNS rounds, default 3, each reported as a min–max range):
 *   round trip:  one line written to `ssh host cat` and read back, median of 200
 *   scp -r:      a tree of small files uploaded (default sftp mode)
 *   sftp -b:     a batch that puts each small file one by one
 * Throughput (skipped with FLIGHTLOG_BENCH_ONLY=latency):
 *   download `ssh host 'cat bigfile' > file`, upload `ssh host 'cat > file' < bigfile`, scp upload.
 * Wall time, and the CPU time of this process (the gateway runs in it) from /proc/self/stat.
 * FLIGHTLOG_BENCH_MB sets the big file's size (default 256), FLIGHTLOG_BENCH_FILES the tree's (300).
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway } from '../helpers/gateway';
import { clientOptions, startSshd } from '../helpers/sshd';
import { tempDir } from '../helpers/tmp';

const MB = Number(process.env.FLIGHTLOG_BENCH_MB ?? 256);
const RUNS = Math.max(1, Number(process.env.FLIGHTLOG_BENCH_RUNS ?? 3));
const FILES = Number(process.env.FLIGHTLOG_BENCH_FILES ?? 300);
const ONLY = process.env.FLIGHTLOG_BENCH_ONLY ?? '';
const ROUND_TRIPS = 200;

/** utime + stime of a process in ms, from /proc/PID/stat (fields 14 and 15, clock ticks). */
export function cpuMs(pid: number | 'self' = 'self'): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100;
}

export function timed(args: string[], stdin: string | 'ignore', stdout: string | 'ignore', cmd = 'ssh'): Promise<number> {
  return new Promise((resolve, reject) => {
    const inFd = stdin === 'ignore' ? 'ignore' : fs.openSync(stdin, 'r');
    const outFd = stdout === 'ignore' ? 'ignore' : fs.openSync(stdout, 'w');
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, args, { stdio: [inFd, outFd, 'pipe'] });
    let err = '';
    c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    c.once('error', reject);
    c.once('close', (code) => {
      if (typeof inFd === 'number') fs.closeSync(inFd);
      if (typeof outFd === 'number') fs.closeSync(outFd);
      if (code !== 0) return reject(new Error(`${cmd} exited with ${code}: ${err.trim().slice(0, 300)}`));
      resolve(Number(process.hrtime.bigint() - t0) / 1e9);
    });
  });
}

/** Median milliseconds for one line to go through `ssh host cat` and come back. */
function roundTrip(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn('ssh', [...args, 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const times: number[] = [];
    let t0 = 0n;
    let got = '';
    const send = (): void => {
      got = '';
      t0 = process.hrtime.bigint();
      c.stdin.write('ping\n');
    };
    c.once('error', reject);
    c.stdout.on('data', (d: Buffer) => {
      got += d.toString();
      if (!got.endsWith('\n')) return;
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (times.length < ROUND_TRIPS) send();
      else c.stdin.end();
    });
    c.once('close', (code) => {
      if (times.length < ROUND_TRIPS) return reject(new Error(`ssh cat exited with ${code} after ${times.length} round trips`));
      times.sort((a, b) => a - b);
      resolve(times[Math.floor(times.length / 2)]);
    });
    // The first round trip waits for the login: start timing once the channel answers.
    send();
  });
}

/** A directory of small files (1–4 KB) in a few subdirectories. */
function smallTree(root: string, count: number): string[] {
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const dir = path.join(root, `d${i % 10}`);
    fs.mkdirSync(dir, { recursive: true });
    const f = path.join(dir, `f${i}.txt`);
    fs.writeFileSync(f, `file ${i}\n`.repeat(100 + (i % 300)));
    files.push(f);
  }
  return files;
}

interface Sample {
  wall: number;
  cpu: number;
}

async function measure(fn: () => Promise<number>): Promise<Sample> {
  const c0 = cpuMs();
  const wall = await fn();
  return { wall, cpu: cpuMs() - c0 };
}

export const range = (xs: number[], digits: number): string => {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo.toFixed(digits) === hi.toFixed(digits) ? lo.toFixed(digits) : `${lo.toFixed(digits)}–${hi.toFixed(digits)}`;
};

async function main(): Promise<void> {
  const work = tempDir('flightlog-bench-ssh-');
  const sshd = await startSshd();
  const gw = await startTestGateway({
    connections: [{ name: 'bench', protocol: 'ssh', upstream: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: { file: sshd.userKeyPath } }, identities: ['bench'] }],
  });
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  try {
    gw.addIdentity('bench');
    const agentKey = path.join(work, 'agent');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', agentKey]);
    gw.addKey('bench', `${agentKey}.pub`);
    const a = gw.address('bench');
    const directOpts = clientOptions(sshd.port, { keyPath: sshd.userKeyPath });
    const gatewayOpts = clientOptions(a.port, { keyPath: agentKey });
    const direct = [...directOpts, '-p', String(sshd.port), `${sshd.user}@${sshd.host}`];
    const viaGateway = [...gatewayOpts, '-p', String(a.port), `bench@${a.host}`];
    const sides = [
      { name: 'direct', ssh: direct, opts: directOpts, port: sshd.port, dest: `${sshd.user}@${sshd.host}` },
      { name: 'gateway', ssh: viaGateway, opts: gatewayOpts, port: a.port, dest: `bench@${a.host}` },
    ] as const;

    if (ONLY !== 'throughput') {
      const tree = path.join(work, 'tree');
      const files = smallTree(tree, FILES);
      const batch = path.join(work, 'batch');
      const latency: Record<string, Record<string, Sample[]>> = {};
      const add = (op: string, side: string, s: Sample): void => {
        ((latency[op] ??= {})[side] ??= []).push(s);
      };
      for (let run = 0; run < RUNS + 1; run++) {
        for (const side of sides) {
          const dst = path.join(work, `dst-${side.name}`);
          fs.rmSync(dst, { recursive: true, force: true });
          fs.mkdirSync(dst);
          fs.writeFileSync(batch, files.map((f) => `put ${f} ${dst}/${path.basename(f)}`).join('\n') + '\n');
          const rt = await measure(async () => (await roundTrip(side.ssh)) / 1000);
          const scp = await measure(() => timed([...side.opts, '-r', '-P', String(side.port), tree, `${side.dest}:${dst}/scp`], 'ignore', 'ignore', 'scp'));
          const sftp = await measure(() => timed([...side.opts, '-P', String(side.port), '-b', batch, side.dest], 'ignore', 'ignore', 'sftp'));
          if (run === 0) continue; // warm-up: page cache, sshd fork path
          add('round trip (median of 200), ms', side.name, { wall: rt.wall * 1000, cpu: rt.cpu });
          add(`scp -r, ${FILES} small files, s`, side.name, scp);
          add(`sftp -b, ${FILES} puts, s`, side.name, sftp);
        }
      }
      console.log(`ssh latency, ${RUNS} runs (ranges min–max), recording on; CPU = this process (gateway + harness), ms`);
      for (const [op, bySide] of Object.entries(latency)) {
        const d = bySide.direct;
        const g = bySide.gateway;
        const digits = op.includes('ms') ? 2 : 2;
        const ratios = g.map((x, i) => x.wall / d[i].wall);
        console.log(
          `  ${op.padEnd(34)} direct ${range(d.map((x) => x.wall), digits).padStart(11)}   gateway ${range(g.map((x) => x.wall), digits).padStart(11)}` +
            `   ratio ${range(ratios, 2).padStart(9)}   CPU direct ${range(d.map((x) => x.cpu), 0)} gateway ${range(g.map((x) => x.cpu), 0)}`,
        );
      }
    }

    if (ONLY !== 'latency') {
      const big = path.join(work, 'big.bin');
      // Incompressible, and written by the host itself so both paths read the same file.
      execFileSync('head', ['-c', String(MB * 1024 * 1024), '/dev/urandom'], { stdio: ['ignore', fs.openSync(big, 'w'), 'inherit'] });
      const sink = path.join(work, 'down.bin');
      const scpArgs = (side: (typeof sides)[number]): string[] => [...side.opts, '-P', String(side.port), big, `${side.dest}:${path.join(work, 'scp.bin')}`];
      const rows: Array<[string, number, number]> = [];
      for (const [name, fn] of [
        ['download (cat bigfile)', (side: (typeof sides)[number]) => timed([...side.ssh, `cat ${big}`], 'ignore', sink)],
        ['upload (cat > file)', (side: (typeof sides)[number]) => timed([...side.ssh, `cat > ${path.join(work, 'up.bin')}`], big, 'ignore')],
        ['upload (scp, sftp protocol)', (side: (typeof sides)[number]) => timed(scpArgs(side), 'ignore', 'ignore', 'scp')],
      ] as const) {
        await fn(sides[0]);
        const d = await fn(sides[0]);
        const g = await fn(sides[1]);
        rows.push([name, MB / d, MB / g]);
      }
      console.log(`ssh throughput, ${MB} MB, recording on (gateway in this process)`);
      for (const [name, d, g] of rows) {
        console.log(`  ${name.padEnd(28)} direct ${d.toFixed(1).padStart(7)} MB/s   gateway ${g.toFixed(1).padStart(7)} MB/s   ratio ${(g / d).toFixed(2)}`);
      }
    }
    await gw.flush();
    clearInterval(sampler);
    console.log(`  gateway process peak RSS ${(peakRss / 1048576).toFixed(0)} MiB`);
  } finally {
    clearInterval(sampler);
    await gw.close();
    await sshd.stop();
    fs.rmSync(gw.dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
}

// bench-ssh-cpu imports the helpers above without running this bench.
if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(`bench-ssh: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
