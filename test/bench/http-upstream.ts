/**
 * The upstream of the HTTP benchmarks (`bench:http`, `bench:http-cpu`): a node:http server in a
 * process of its own, so it does not share the load generator's event loop or CPU figure. It
 * serves `/small` (the JSON text given), `/1mb` and a streamed `/1gb`, all with a content-length.
 */
import { spawn } from 'node:child_process';

const SCRIPT = `
const http = require('http');
const small = Buffer.from(process.argv[1]);
const mb = Buffer.alloc(1024 * 1024, 0x61);
const chunk = Buffer.alloc(256 * 1024, 0x62);
const s = http.createServer((req, res) => {
  req.resume();
  if (req.url === '/small') { res.writeHead(200, { 'content-type': 'application/json', 'content-length': small.length }); res.end(small); return; }
  if (req.url === '/1mb') { res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': mb.length }); res.end(mb); return; }
  if (req.url === '/1gb') {
    let left = 1024 * 1024 * 1024;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left });
    const pump = () => { while (left > 0) { left -= chunk.length; if (!res.write(chunk)) { res.once('drain', pump); return; } } res.end(); };
    pump(); return;
  }
  res.writeHead(404); res.end();
});
s.keepAliveTimeout = 60000;
s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
`;

export interface BenchUpstream {
  port: number;
  stop(): void;
}

export function startBenchUpstream(smallJson: string): Promise<BenchUpstream> {
  const child = spawn(process.execPath, ['-e', SCRIPT, smallJson], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the bench upstream exited (${code}) before it listened`)));
    child.stdout?.once('data', (d: Buffer) => resolve({ port: Number(d.toString().trim()), stop: () => child.kill() }));
  });
}
