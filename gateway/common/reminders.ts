/**
 * Agents (Claude Code among them) inject `<system-reminder>` blocks into the user turn; the
 * human's prompt is what is left. Pure, so the app and the store strip them the same way.
 */
export function stripSystemReminders(text: string): string {
  // a block and the whitespace around it become one space: "model: <reminder>\nprompt" reads "model: prompt"
  return text.replace(/\s*<system-reminder>[\s\S]*?(?:<\/system-reminder>|$)\s*/gi, ' ').trim();
}
