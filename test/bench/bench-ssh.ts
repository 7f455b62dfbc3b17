/**
 * SSH throughput, direct vs through the gateway (recording on), in one run:
 *   download: `ssh host 'cat bigfile' > file`        upload: `ssh host 'cat > file' < bigfile`
 * Prints MB/s, the gateway/direct ratio and the gateway process's peak RSS.
 * FLIGHTLOG_BENCH_MB sets the file size (default 256).
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startTestGateway } from '../helpers/gateway';
import { clientOptions, startSshd } from '../helpers/sshd';
import { tempDir } from '../helpers/tmp';

const MB = Number(process.env.FLIGHTLOG_BENCH_MB ?? 256);

function timed(args: string[], stdin: string | 'ignore', stdout: string | 'ignore', cmd = 'ssh'): Promise<number> {
  return new Promise((resolve, reject) => {
    const inFd = stdin === 'ignore' ? 'ignore' : fs.openSync(stdin, 'r');
    const outFd = stdout === 'ignore' ? 'ignore' : fs.openSync(stdout, 'w');
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, args, { stdio: [inFd, outFd, 'inherit'] });
    c.once('error', reject);
    c.once('close', (code) => {
      if (typeof inFd === 'number') fs.closeSync(inFd);
      if (typeof outFd === 'number') fs.closeSync(outFd);
      if (code !== 0) return reject(new Error(`${cmd} exited with ${code}`));
      resolve(Number(process.hrtime.bigint() - t0) / 1e9);
    });
  });
}

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
    const big = path.join(work, 'big.bin');
    // Incompressible, and written by the host itself so both paths read the same file.
    execFileSync('head', ['-c', String(MB * 1024 * 1024), '/dev/urandom'], { stdio: ['ignore', fs.openSync(big, 'w'), 'inherit'] });
    const direct = [...clientOptions(sshd.port, { keyPath: sshd.userKeyPath }), '-p', String(sshd.port), `${sshd.user}@${sshd.host}`];
    const a = gw.address('bench');
    const viaGateway = [...clientOptions(a.port, { keyPath: agentKey }), '-p', String(a.port), `bench@${a.host}`];
    const sink = path.join(work, 'down.bin');
    const scpDirect = [...clientOptions(sshd.port, { keyPath: sshd.userKeyPath }), '-P', String(sshd.port), big, `${sshd.user}@${sshd.host}:${path.join(work, 'scp.bin')}`];
    const scpGateway = [...clientOptions(a.port, { keyPath: agentKey }), '-P', String(a.port), big, `bench@${a.host}:${path.join(work, 'scp.bin')}`];
    const rows: Array<[string, number, number]> = [];
    for (const [name, fn] of [
      ['download (cat bigfile)', (args: string[]) => timed([...args, `cat ${big}`], 'ignore', sink)],
      ['upload (cat > file)', (args: string[]) => timed([...args, `cat > ${path.join(work, 'up.bin')}`], big, 'ignore')],
      ['upload (scp, sftp protocol)', (args: string[]) => timed(args === direct ? scpDirect : scpGateway, 'ignore', 'ignore', 'scp')],
    ] as const) {
      await fn(direct); // warm-up: page cache, sshd fork path
      const d = await fn(direct);
      const g = await fn(viaGateway);
      rows.push([name, MB / d, MB / g]);
    }
    await gw.flush();
    clearInterval(sampler);
    console.log(`ssh throughput, ${MB} MB, recording on (gateway in this process)`);
    for (const [name, d, g] of rows) {
      console.log(`  ${name.padEnd(28)} direct ${d.toFixed(1).padStart(7)} MB/s   gateway ${g.toFixed(1).padStart(7)} MB/s   ratio ${(g / d).toFixed(2)}`);
    }
    console.log(`  gateway process peak RSS ${(peakRss / 1048576).toFixed(0)} MiB`);
  } finally {
    clearInterval(sampler);
    await gw.close();
    await sshd.stop();
    fs.rmSync(gw.dataDir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench-ssh: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
