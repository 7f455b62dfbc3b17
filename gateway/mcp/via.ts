/**
 * `upstream.via` of an MCP stdio connection: the server the gateway starts reaches its database
 * through a Postgres connection of the same gateway, with a token minted for that one MCP session.
 * Sessions opened with the token belong to the agent's run and name the MCP session (`via`), so
 * the SQL the server runs links to the tools/call in flight there (see Lineage.onCommandStart).
 *
 * The token is a row in `tokens` (so SCRAM and revocation work as for any token) with the agent's
 * run, deleted when the server's child exits: deleting, not revoking, because a revoked token of a
 * run ends every live session of that run.
 */
import type { Db } from '../store/db';
import { addRunToken, hashToken } from '../store/identities';
import type { AuthResult, Masker } from '../core/types';
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
  static of(db: Db): ViaTokens {
    let r = registries.get(db);
    if (!r) registries.set(db, (r = new ViaTokens(db)));
    return r;
  }

  private constructor(private readonly db: Db) {}

  mint(address: string, identity: string, runId: string | null, masker: Masker): ViaCredential {
    const token = addRunToken(this.db, identity, runId);
    // the server may print its environment: the token is masked from the start
    masker.addKnownSecret('flightlog-token', token);
    const hash = hashToken(token);
    const row = this.db.prepare('SELECT id FROM tokens WHERE token_hash = ?').get(hash) as { id: number };
    const holder: Holder = { tokenId: row.id, mcpSessionId: null };
    this.byHash.set(hash, holder);
    this.byId.set(row.id, holder);
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
          this.db.prepare('DELETE FROM tokens WHERE id = ?').run(row.id);
        } catch {
          // a failing store: the token dies with its run (revokeRunTokens) instead
        }
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
