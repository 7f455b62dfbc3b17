/**
 * JSON Lines for a SIEM: one self-describing event per line, with its session, connection,
 * identity and run, and the command it belongs to. Masked data only (read from the store).
 */
import type { Db } from '../store/db';
import { resolveSessionId } from '../store/queries';
import { commandHeadById, jsonlSessionRow } from '../store/bundle-reads';
import type { Json } from '../common/types';
import { parseJsonText } from './rows';
import { eventRows, writeOut } from './streams';

export interface JsonlEvent {
  time: string;
  session: string;
  seq: number;
  /** microseconds from the session start */
  tUs: number;
  kind: string;
  direction: string;
  connection: string;
  protocol: string;
  identity: string | null;
  run: string | null;
  clientAddr: string | null;
  command: { id: number; kind: string; text: string } | null;
  data: Json;
  hash: string;
}

/** Writes the events of one or more sessions as JSON Lines, sessions in the order given. */
export async function exportJsonl(db: Db, sessionIds: string | string[], out: string): Promise<{ events: number; bytes: number }> {
  const ids = (Array.isArray(sessionIds) ? sessionIds : [sessionIds]).map((id) => resolveSessionId(db, id));
  const commandOf = commandHeadById(db);
  let events = 0;
  const bytes = await writeOut(out, async (f) => {
    for (const id of ids) {
      const s = jsonlSessionRow(db, id);
      // events of one command are contiguous: remembering the last one avoids a lookup per event
      let last = null as JsonlEvent['command'];
      for await (const e of eventRows(db, id)) {
        let command: JsonlEvent['command'] = null;
        if (e.command_id !== null) {
          if (last?.id !== e.command_id) {
            const c = commandOf(e.command_id);
            last = c ? { id: c.id, kind: c.kind, text: c.text } : { id: e.command_id, kind: 'unknown', text: '' };
          }
          command = last;
        }
        const line: JsonlEvent = {
          time: e.wall,
          session: s.id,
          seq: e.seq,
          tUs: e.t_us,
          kind: e.kind,
          direction: e.direction,
          connection: s.connection,
          protocol: s.protocol,
          identity: s.identity,
          run: s.run_id,
          clientAddr: s.client_addr,
          command,
          data: parseJsonText(e.data) ?? null,
          hash: e.hash,
        };
        await f.write(JSON.stringify(line) + '\n');
        events++;
      }
    }
  });
  return { events, bytes };
}
