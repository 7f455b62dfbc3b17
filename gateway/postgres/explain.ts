/**
 * The planner's estimate for a held statement, so a reviewer sees "about 40 000 rows" before
 * approving a DELETE. The gateway asks the server itself, with the connection's upstream login,
 * on a connection of its own (never the agent's: its transaction state is the agent's), inside
 * a READ ONLY transaction that is rolled back, through the extended protocol (one statement
 * only), within a time box.
 */
import type { Duplex } from 'node:stream';
import type { PostgresUpstream } from '../common/config-schema';
import type { ApprovalDetails } from '../approvals';
import { decodeDataRow, decodeFields } from './server-messages';
import { loginUpstream } from './upstream';
import * as wire from './wire';

export const EXPLAIN_TIMEOUT_MS = 3000;

interface PlanNode {
  'Node Type'?: unknown;
  'Plan Rows'?: unknown;
  Operation?: unknown;
  Plans?: PlanNode[];
}

/** Rows and node of the plan's top: a ModifyTable reports 0 rows, so its input tells what is touched. */
export function summarizePlan(json: string): { rows: number; node: string } | null {
  const parsed = JSON.parse(json) as Array<{ Plan?: PlanNode }>;
  const top = parsed[0]?.Plan;
  if (!top || typeof top['Node Type'] !== 'string' || typeof top['Plan Rows'] !== 'number') return null;
  const child = top.Plans?.[0];
  if (top['Node Type'] === 'ModifyTable' && child && typeof child['Plan Rows'] === 'number' && typeof child['Node Type'] === 'string') {
    const op = typeof top.Operation === 'string' ? top.Operation : 'ModifyTable';
    return { rows: child['Plan Rows'], node: `${op} (${child['Node Type']})` };
  }
  return { rows: top['Plan Rows'], node: top['Node Type'] };
}

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function query(sql: string): Buffer {
  return wire.message('Q', wire.cstr(sql));
}

/**
 * Runs `EXPLAIN (FORMAT JSON) <sql>` upstream. Never throws: a failure is `estimate: null` with
 * a short reason. `safeMessages`: whether the server's error text may be shown (it can quote
 * the statement, so not when the statement held a secret literal).
 */
export async function explainEstimate(
  up: PostgresUpstream,
  password: string | undefined,
  database: string,
  sql: string,
  opts: { timeoutMs?: number; safeMessages?: boolean } = {},
): Promise<ApprovalDetails> {
  const timeoutMs = opts.timeoutMs ?? EXPLAIN_TIMEOUT_MS;
  let socket: Duplex | null = null;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ApprovalDetails>((resolve) => {
    timer = setTimeout(() => {
      timedOut = true;
      socket?.destroy();
      resolve({ estimate: null, estimateError: `EXPLAIN took longer than ${timeoutMs / 1000}s` });
    }, timeoutMs);
    timer.unref();
  });
  const work = (async (): Promise<ApprovalDetails> => {
    let login;
    try {
      login = await loginUpstream(up, password, { user: up.user, database, application_name: 'flightlog-explain' });
    } catch (err) {
      return { estimate: null, estimateError: `could not log in upstream for EXPLAIN (${(err as { code?: string }).code ?? 'error'})` };
    }
    socket = login.socket;
    if (timedOut) {
      socket.destroy();
      return { estimate: null, estimateError: 'timed out' };
    }
    return await runExplain(login.socket, login.leftover, sql, timeoutMs, opts.safeMessages ?? false);
  })();
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    (socket as Duplex | null)?.destroy();
  }
}

function runExplain(socket: Duplex, leftover: Buffer, sql: string, timeoutMs: number, safeMessages: boolean): Promise<ApprovalDetails> {
  return new Promise((resolve) => {
    let buf = leftover;
    let ready = 0;
    let plan: string | null = null;
    let error: string | null = null;
    const done = (d: ApprovalDetails): void => {
      socket.removeAllListeners('data');
      resolve(d);
    };
    socket.on('error', () => done({ estimate: null, estimateError: 'the upstream connection failed during EXPLAIN' }));
    socket.on('close', () => done({ estimate: null, estimateError: 'the upstream closed the connection during EXPLAIN' }));
    const onData = (d: Buffer): void => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) break;
        const type = String.fromCharCode(buf[0]);
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        if (type === 'E' && error === null) {
          const f = decodeFields(body, 0, body.length);
          error = safeMessages && f.M ? `EXPLAIN failed: ${f.M.slice(0, 160)}` : `EXPLAIN failed (SQLSTATE ${f.C ?? 'unknown'})`;
        } else if (type === 'D' && plan === null) {
          const v = decodeDataRow(body, 0, body.length)[0];
          plan = v ? v.toString('utf8') : null;
        } else if (type === 'Z' && ++ready === 4) {
          if (error !== null) return done({ estimate: null, estimateError: error });
          try {
            const estimate = plan === null ? null : summarizePlan(plan);
            return done(estimate ? { estimate } : { estimate: null, estimateError: 'EXPLAIN gave no plan' });
          } catch {
            return done({ estimate: null, estimateError: 'EXPLAIN gave an unreadable plan' });
          }
        }
      }
    };
    socket.on('data', onData);
    socket.write(
      Buffer.concat([
        query('BEGIN READ ONLY'),
        query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`),
        wire.message('P', Buffer.concat([wire.cstr(''), wire.cstr(`EXPLAIN (FORMAT JSON) ${sql}`), int16(0)])),
        wire.message('B', Buffer.concat([wire.cstr(''), wire.cstr(''), int16(0), int16(0), int16(0)])),
        wire.message('E', Buffer.concat([wire.cstr(''), Buffer.alloc(4)])),
        wire.message('S', Buffer.alloc(0)),
        query('ROLLBACK'),
        wire.terminate(),
      ]),
    );
  });
}
