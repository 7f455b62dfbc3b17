/**
 * `upstream.via` of an MCP stdio connection: the server the gateway starts reaches its database
 * through a Postgres connection of the same gateway, with a token minted for that one MCP session.
 * Sessions opened with the token belong to the agent's run and name the MCP session (`via`), so
 * the SQL the server runs links to the tools/call in flight there (see Lineage.onCommandStart).
 *
 * The token is a row in `tokens` (so SCRAM and revocation work as for any token) with the agent's
 * run, deleted when the server's child exits: deleting, not revoking, because a revoked token of a
 * run ends every live session of that run. The live ones are listed in DATA_DIR/mcp/via-tokens.json,
 * so the tokens a crashed gateway left behind are deleted when the next one starts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Db } from '../store/db';
import { addRunToken, hashToken } from '../store/identities';
import { deleteTokens, tokenIdByHash } from '../store/connections';
import type { AuthResult, Masker } from '../common/types';
import type { ViaCredential } from '../core/listener';

interface Holder {
  tokenId: number;
  mcpSessionId: string | null;
}

const registries = new WeakMap<Db, ViaTokens>();

export class ViaTokens {
  private readonly byHash = new Map<string, Holder>();
  private readonly byId = new Map<number, Holder>();

  /** One registry per store: tokens are checked by whichever listener's context sees them. */
  static of(db: Db, dataDir: string): ViaTokens {
    let r = registries.get(db);
    if (!r) registries.set(db, (r = new ViaTokens(db, path.join(dataDir, 'mcp', 'via-tokens.json'))));
    return r;
  }

  private constructor(
    private readonly db: Db,
    private readonly file: string,
  ) {
    let stale: unknown = [];
    try {
      stale = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      return; // none: the last gateway stopped cleanly (or never minted one)
    }
    try {
      deleteTokens(db, (Array.isArray(stale) ? stale : []).filter((id): id is number => typeof id === 'number'));
      fs.rmSync(file, { force: true });
    } catch {
      // a read-only or failing store: tried again at the next start
    }
  }

  private persist(): void {
    try {
      if (this.byId.size === 0) fs.rmSync(this.file, { force: true });
      else {
        fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
        fs.writeFileSync(this.file, JSON.stringify([...this.byId.keys()]), { mode: 0o600 });
      }
    } catch {
      // best effort: a leftover token still dies with its run
    }
  }

  mint(address: string, identity: string, runId: string | null, masker: Masker): ViaCredential {
    const token = addRunToken(this.db, identity, runId);
    // the server may print its environment: the token is masked from the start
    masker.addKnownSecret('flightlog-token', token);
    const hash = hashToken(token);
    const row = { id: tokenIdByHash(this.db, hash) };
    const holder: Holder = { tokenId: row.id, mcpSessionId: null };
    this.byHash.set(hash, holder);
    this.byId.set(row.id, holder);
    this.persist();
    let released = false;
    return {
      address,
      token,
      bind: (id) => void (holder.mcpSessionId = id),
      release: () => {
        if (released) return;
        released = true;
        this.byHash.delete(hash);
        this.byId.delete(row.id);
        try {
          deleteTokens(this.db, [row.id]);
        } catch {
          // a failing store: the token stays listed, and the next gateway deletes it
          return;
        }
        this.persist();
      },
    };
  }

  /** The AuthResult with the MCP session its token was minted for, when it was one of ours. */
  tag(r: AuthResult, by: { token: string } | { tokenId: number }): AuthResult {
    if (!r.ok || this.byId.size === 0) return r;
    const h = 'token' in by ? this.byHash.get(hashToken(by.token)) : this.byId.get(by.tokenId);
    return h?.mcpSessionId ? { ...r, via: h.mcpSessionId } : r;
  }
}
