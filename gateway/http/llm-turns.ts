/**
 * Which prompt turns are new in a model call. Agents resend the whole conversation on every
 * call; a reviewer wants only what was added since the previous call. Several conversations
 * may interleave in one run (sub-agents), so we keep a few and diff against the closest.
 * Pure: no Node imports.
 */
import type { LlmTurn } from './llm-types';

const MAX_CONVERSATIONS = 16;

export class ConversationTracker {
  /** most recently used last; each a list of canonical turns */
  private conversations: string[][] = [];

  /** Returns the turns of `turns` not seen in the closest earlier call, and remembers this call. */
  newTurns(turns: LlmTurn[], continues = false): LlmTurn[] {
    const canon = turns.map((t) => JSON.stringify(t));
    if (continues) {
      this.conversations.push(canon);
      this.trim();
      return turns;
    }
    let best = -1;
    let bestLen = 0;
    for (let i = 0; i < this.conversations.length; i++) {
      const prev = this.conversations[i];
      let n = 0;
      while (n < prev.length && n < canon.length && prev[n] === canon[n]) n++;
      if (n > bestLen || (n === bestLen && n > 0)) {
        best = i;
        bestLen = n;
      }
    }
    let fresh = turns.slice(bestLen);
    if (bestLen > 0) {
      // the assistant turns right after the shared prefix echo the previous reply, already recorded
      let skip = 0;
      while (skip < fresh.length && fresh[skip].role === 'assistant') skip++;
      fresh = fresh.slice(skip);
    }
    // the new call replaces the conversation it extends, so memory stays bounded
    if (best >= 0 && bestLen === this.conversations[best].length) this.conversations.splice(best, 1);
    this.conversations.push(canon);
    this.trim();
    return fresh;
  }

  private trim(): void {
    if (this.conversations.length > MAX_CONVERSATIONS) this.conversations.shift();
  }
}
