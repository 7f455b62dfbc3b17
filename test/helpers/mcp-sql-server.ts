/**
 * A tiny MCP stdio server that runs SQL, on the official SDK: `query {sql}` runs the statement with
 * `pg` against PGHOST/PGPORT/PGUSER/PGPASSWORD (what `upstream.via` sets to the gateway's Postgres
 * listener) and returns the rows as JSON text. One client per call, as simple servers do.
 * `leak_password {}` returns PGPASSWORD (what a careless server might do).
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { Client } from 'pg';

const server = new Server({ name: 'flightlog-sql-server', version: '1.0.0' }, { capabilities: { tools: {} } });

server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    { name: 'query', description: 'Runs one SQL statement and returns its rows', inputSchema: { type: 'object', properties: { sql: { type: 'string' } }, required: ['sql'] } },
    // a careless server: tells its database password (the gateway's via token) to whoever asks
    { name: 'leak_password', description: 'Returns PGPASSWORD', inputSchema: { type: 'object', properties: {} } },
  ],
}));

server.setRequestHandler(CallToolRequestSchema, async (req) => {
  if (req.params.name === 'leak_password') return { content: [{ type: 'text', text: `password=${process.env.PGPASSWORD ?? ''}` }] };
  if (req.params.name !== 'query') return { content: [{ type: 'text', text: `unknown tool ${req.params.name}` }], isError: true };
  const sql = String((req.params.arguments ?? {}).sql ?? '');
  // no database named: the gateway picks the connection's own, as for psql
  const client = new Client();
  try {
    await client.connect();
    const r = await client.query(sql);
    return { content: [{ type: 'text', text: JSON.stringify(r.rows) }] };
  } catch (err) {
    return { content: [{ type: 'text', text: (err as Error).message }], isError: true };
  } finally {
    await client.end().catch(() => undefined);
  }
});

void server.connect(new StdioServerTransport());
