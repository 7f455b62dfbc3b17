/**
 * Recorded sessions for the e2e suite, written through the gateway's own recorder (the same
 * path every listener takes): an agent's SQL work with a failed then retried migration, an SSH
 * shell with enough output for several replay keyframes, model calls whose tool calls caused
 * commands, an SFTP write with before/after, findings, and hostile content everywhere.
 */
import type { Recorder } from '../../gateway/store/recorder';
import type { Json } from '../../gateway/common/types';

export const HOSTILE_HTML = `<script>window.__pwned='script'</script><img src=x onerror="window.__pwned='img'"><b>bold?</b>`;
/** OSC 52 clipboard write ("pwned" base64), OSC 0 title, OSC 8 hyperlink, DCS */
export const HOSTILE_TERMINAL =
  '\x1b]52;c;cHduZWQ=\x07' + '\x1b]0;PWNED-TITLE\x07' + '\x1b]8;;https://evil.example/x\x07click-me\x1b]8;;\x07' + '\x1bP+q544e\x1b\\' + '\x1b]52;c;cHduZWQy\x1b\\';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Seeded {
  pgSession: string;
  sshSession: string;
  httpSession: string;
  selectCommand: number;
  hostileSqlCommand: number;
  llmCommand: number;
  causedSqlCommand: number;
  hostileHttpCommand: number;
}

export async function seed(recorder: Recorder): Promise<Seeded> {
  // The model API session: a call whose tool call runs SQL.
  const http = recorder.openSession({ connection: 'model', protocol: 'http', identity: 'claude', clientAddr: '127.0.0.1:50000' });
  const toolSql = 'SELECT id, customer, total FROM orders WHERE total > 100 ORDER BY total DESC';
  const llm = http.startCommand({ kind: 'llm', text: 'claude-sonnet-4: Which orders are above 100? (+ tool results)', classification: 'write' });
  llm.finish({
    status: 'ok',
    result: {
      method: 'POST',
      url: '/v1/messages',
      status: 200,
      model: 'claude-sonnet-4',
      newTurns: [{ role: 'user', content: 'Which orders are above 100? Use the database.' }],
      assistantText: 'I will query the orders table.',
      toolCalls: [{ id: 'toolu_01', name: 'run_sql', arguments: JSON.stringify({ query: toolSql }) }],
      usage: { input_tokens: 812, output_tokens: 64 },
      stopReason: 'tool_use',
      apiError: null,
    },
  });
  const hostileHttp = http.startCommand({ kind: 'http', text: 'GET /v1/pages/1', classification: 'read' });
  hostileHttp.finish({
    status: 'ok',
    result: {
      method: 'GET',
      url: '/v1/pages/1',
      upstream: 'https://api.example.com',
      status: 200,
      requestHeaders: { accept: 'application/json', 'x-note': HOSTILE_HTML },
      headers: { 'content-type': 'text/html' },
      requestBody: null,
      responseBody: { size: 180, sha256: '0'.repeat(64), truncated: false, encoding: 'utf8', decoded: null, body: `<html><body>${HOSTILE_HTML}</body></html>` },
      timings: { ttfbMs: 12, totalMs: 15 },
    },
  });

  // The Postgres session.
  const pg = recorder.openSession({ connection: 'app-db', protocol: 'postgres', identity: 'claude', clientAddr: '127.0.0.1:50001', meta: { database: 'app', application: 'psql' } });
  const select = pg.startCommand({ kind: 'sql', text: 'SELECT id, customer, status, total\n  FROM orders\n WHERE created_at > now() - interval \'7 days\'\n ORDER BY id', classification: 'read', targets: ['orders'] });
  const rows: Json[] = [];
  for (let i = 1; i <= 400; i++) rows.push([String(i), `customer-${i}`, i % 7 === 0 ? 'refunded' : 'paid', (i * 13.37).toFixed(2)]);
  pg.event('query', 'client→upstream', { text: 'SELECT …' }, { commandId: select.id });
  select.finish({ status: 'ok', result: { columns: [{ name: 'id', type: 23 }, { name: 'customer', type: 25 }, { name: 'status', type: 25 }, { name: 'total', type: 1700 }], rows, rowCount: 400, tag: 'SELECT 400', sha256: null, error: null } });
  await sleep(30);
  const migration1 = pg.startCommand({ kind: 'sql', text: 'ALTER TABLE orders ADD COLUMN shipped_at timestamptz NOT NULL', classification: 'ddl', targets: ['orders'] });
  migration1.finish({ status: 'error', error: 'column "shipped_at" of relation "orders" contains null values', result: { rows: [], rowCount: null, tag: null, error: 'column "shipped_at" contains null values' } });
  await sleep(30);
  const migration2 = pg.startCommand({ kind: 'sql', text: "ALTER TABLE orders ADD COLUMN shipped_at timestamptz NOT NULL DEFAULT now()", classification: 'ddl', targets: ['orders'] });
  migration2.finish({ status: 'ok', result: { rows: [], rowCount: null, tag: 'ALTER TABLE', error: null } });
  const hostileSql = pg.startCommand({ kind: 'sql', text: 'SELECT body FROM comments WHERE id = 7', classification: 'read', targets: ['comments'] });
  hostileSql.finish({ status: 'ok', result: { columns: [{ name: 'body', type: 25 }], rows: [[HOSTILE_HTML], ['\x1b]52;c;cHduZWQ=\x07 plain']], rowCount: 2, tag: 'SELECT 2', error: null } });
  const caused = pg.startCommand({ kind: 'sql', text: toolSql, classification: 'read', targets: ['orders'], causedBy: llm.id });
  caused.finish({ status: 'ok', result: { columns: [{ name: 'id', type: 23 }, { name: 'customer', type: 25 }, { name: 'total', type: 1700 }], rows: [['12', 'acme', '160.44']], rowCount: 1, tag: 'SELECT 1', error: null } });
  pg.finding({ category: 'secret', kind: 'aws-access-key', fp: 'a1b2c3d4', direction: 'upstream→client', commandId: select.id, detail: { column: 'api_key' } });
  pg.finding({ category: 'secret', kind: 'aws-access-key', fp: 'a1b2c3d4', direction: 'client→upstream', commandId: caused.id });
  pg.finding({ category: 'guardrail', kind: 'ddl-review', direction: 'gateway', commandId: migration2.id, detail: { rule: 'ddl needs review', action: 'allow' } });

  // The SSH shell: a terminal recording over ~2.5 s, > 512 KB of output so replay keeps keyframes.
  const ssh = recorder.openSession({ connection: 'web-1', protocol: 'ssh', identity: 'claude', clientAddr: '127.0.0.1:50002' });
  ssh.event('pty', 'client→upstream', { term: 'xterm-256color', cols: 100, rows: 28 });
  ssh.event('o', 'upstream→client', '\x1b[1;32mdeploy@web-1\x1b[0m:\x1b[1;34m~\x1b[0m$ ');
  const steps: Array<{ cmd: string; out: () => string }> = [
    { cmd: 'uname -a', out: () => 'Linux web-1 6.1.0-18-amd64 #1 SMP Debian x86_64 GNU/Linux\r\n' },
    { cmd: 'cat hostile.txt', out: () => `${HOSTILE_TERMINAL}after-hostile\r\n` },
    {
      cmd: 'journalctl -u app --no-pager',
      out: () => {
        let s = '';
        for (let i = 0; i < 7000; i++) s += `\x1b[2m2025-01-0${1 + (i % 9)}T10:${String(i % 60).padStart(2, '0')}\x1b[0m app[311]: request ${i} handled in ${i % 97} ms status=\x1b[32m200\x1b[0m\r\n`;
        return s;
      },
    },
    { cmd: 'systemctl restart app', out: () => '' },
    { cmd: 'echo REPLAY-END-MARKER', out: () => 'REPLAY-END-MARKER\r\n' },
  ];
  for (const step of steps) {
    await sleep(400);
    const c = ssh.startCommand({ kind: 'shell', text: step.cmd });
    for (const ch of step.cmd) ssh.event('i', 'client→upstream', ch, { commandId: c.id });
    ssh.event('o', 'upstream→client', step.cmd + '\r\n', { commandId: c.id });
    const out = step.out();
    for (let i = 0; i < out.length; i += 32 * 1024) ssh.event('o', 'upstream→client', out.slice(i, i + 32 * 1024), { commandId: c.id });
    ssh.event('o', 'upstream→client', '\x1b[1;32mdeploy@web-1\x1b[0m:\x1b[1;34m~\x1b[0m$ ', { commandId: c.id });
    c.finish({ status: 'ok', result: { exitCode: 0 } });
  }
  const sftp = ssh.startCommand({ kind: 'sftp', text: 'write /etc/app/config.yaml', classification: 'write', targets: ['/etc/app/config.yaml'] });
  sftp.finish({
    status: 'ok',
    result: { path: '/etc/app/config.yaml', bytesRead: 0, bytesWritten: 96, diff: { before: 'port: 8080\nworkers: 2\nlog_level: info\n', after: 'port: 8080\nworkers: 8\nlog_level: debug\nfeature_x: true\n' } },
  });
  await sleep(300);
  ssh.event('r', 'client→upstream', '120x30');
  ssh.event('o', 'upstream→client', 'logout\r\n');

  http.close('closed', 'client disconnected');
  pg.close('closed', 'client disconnected');
  ssh.close('closed', 'client disconnected');
  await recorder.flush();
  return {
    pgSession: pg.id,
    sshSession: ssh.id,
    httpSession: http.id,
    selectCommand: select.id,
    hostileSqlCommand: hostileSql.id,
    llmCommand: llm.id,
    causedSqlCommand: caused.id,
    hostileHttpCommand: hostileHttp.id,
  };
}
