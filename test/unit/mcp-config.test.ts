/** `protocol: mcp` in flightlog.yaml: the stdio upstream, its secrets, and `match.mcp` guardrails, with precise errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, mcpEnvSecrets, resolveSecrets } from '../../gateway/config/load';
import type { McpStdioUpstream } from '../../gateway/common/config-schema';
import { compileGuardrails } from '../../gateway/policy';
import { tempDir } from '../helpers/tmp';

const dir = tempDir('flightlog-mcp-config-');

function write(text: string): string {
  const f = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(f, text);
  return f;
}

test('the DESIGN.md example loads: command, env secrets, cwd relative to the file, no listen', () => {
  const c = loadConfig(
    write(`
connections:
  - name: tools
    protocol: mcp
    upstream: { command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv/app],
                env: { API_TOKEN: { env: TOOLS_TOKEN } }, cwd: work }
    identities: [claude]
guardrails:
  - name: no-env
    match: { mcp: { server: tools, tool: "read_*", arguments: { path: ["*.env", "*.pem"] } } }
    action: deny
  - name: changed
    match: { mcp: { changed: true } }
    action: hold
`),
  );
  const conn = c.connections[0];
  assert.equal(conn.protocol, 'mcp');
  assert.deepEqual(conn.listen, { host: '127.0.0.1', port: 0 });
  const up = conn.upstream as McpStdioUpstream;
  assert.deepEqual(up.command, ['npx', '-y', '@modelcontextprotocol/server-filesystem', '/srv/app']);
  assert.equal(up.cwd, path.join(dir, 'work'));
  assert.deepEqual(mcpEnvSecrets(resolveSecrets(conn, { TOOLS_TOKEN: 's3cr3t-value' }, c.file)), { API_TOKEN: 's3cr3t-value' });
  assert.throws(() => resolveSecrets(conn, {}, c.file), /connection "tools": upstream\.env\.API_TOKEN reads environment variable TOOLS_TOKEN, which is not set/);
  const rules = compileGuardrails(c.guardrails);
  const call = (tool: string, args: Record<string, unknown>, changed = false) =>
    rules.decide({ connection: 'tools', protocol: 'mcp', identity: 'claude', kind: 'mcp', text: `tools.${tool} ${JSON.stringify(args)}`, mcp: { server: ['tools', 'secure-filesystem-server'], tool, arguments: args as never, changed } }).action;
  assert.equal(call('read_text_file', { path: '/srv/app/.ENV' }), 'block');
  assert.equal(call('read_text_file', { path: '/srv/app/README.md' }), 'allow');
  assert.equal(call('write_file', { path: '/srv/app/.env' }), 'allow');
  assert.equal(call('write_file', { path: '/srv/app/a' }, true), 'hold');
});

test('bad MCP config is one precise line', () => {
  const bad: Array<[string, RegExp]> = [
    ['upstream: { command: [] }', /connections\[0\]\.upstream\.command: expected the server's command line as a list/],
    ['upstream: { command: npx }', /upstream\.command: expected the server's command line as a list \[CMD, ARGS…\], got "npx"/],
    ['upstream: { command: [x], env: { TOKEN: abc } }', /upstream\.env\.TOKEN: secrets are referenced, never written here/],
    ['upstream: { command: [x], env: { "1BAD": { env: X } } }', /upstream\.env\.1BAD: expected an environment variable name/],
    ['upstream: { command: [x], args: [y] }', /upstream\.args: unknown key "args"/],
    ['listen: 0.0.0.0:7000\n    upstream: { command: [x] }', /listen: an MCP stdio connection listens on loopback only/],
  ];
  for (const [yaml, re] of bad) {
    assert.throws(() => loadConfig(write(`connections:\n  - name: t\n    protocol: mcp\n    ${yaml}\n    identities: [claude]\n`)), re, yaml);
  }
  assert.throws(
    () => loadConfig(write('guardrails:\n  - name: r\n    match: { mcp: { changed: maybe } }\n    action: deny\n')),
    /guardrails\[0\]\.match\.mcp\.changed: expected true or false/,
  );
  assert.throws(() => loadConfig(write('guardrails:\n  - name: r\n    match: { mcp: {} }\n    action: deny\n')), /match\.mcp: expected server, tool, arguments or changed/);
});

test('flightlog mcp config prints a snippet each agent can read; bad usage is one line', async () => {
  const { captureCli } = await import('../helpers/cli');
  const all = await captureCli(['mcp', 'config', 'tools']);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /Claude Code/);
  assert.match(all.stdout, /VS Code/);
  const claude = await captureCli(['mcp', 'config', 'tools', '--agent', 'claude', '--identity', 'claude']);
  assert.deepEqual(JSON.parse(claude.stdout), { mcpServers: { tools: { command: 'flightlog', args: ['mcp', '--connection', 'tools', '--identity', 'claude'] } } });
  const vscode = await captureCli(['mcp', 'config', 'tools', '--agent', 'vscode']);
  assert.deepEqual(JSON.parse(vscode.stdout), { servers: { tools: { type: 'stdio', command: 'flightlog', args: ['mcp', '--connection', 'tools'] } } });
  const bad = await captureCli(['mcp', 'config', 'tools', '--agent', 'emacs']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'flightlog: --agent expects claude, cursor or vscode, got "emacs"\n');
  const none = await captureCli(['mcp']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^flightlog: mcp needs --connection NAME/);
});
