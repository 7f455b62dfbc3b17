/** The small part of mvdan-sh (mvdan/sh transpiled to JS) that guardrails use. */
declare module 'mvdan-sh' {
  export interface ShNode {
    [key: string]: unknown;
  }
  export const syntax: {
    NewParser(): { Parse(src: string, name: string): ShNode };
    Walk(node: ShNode, visit: (node: ShNode | null) => boolean): void;
    NodeType(node: ShNode): string;
  };
}
