// Lint: the TypeScript-aware recommended rules, plus the boundaries STYLE.md asks for.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'dist-*/**', 'node_modules/**', 'test-artifacts/**', 'out/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-require-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-control-regex': 'off',
    },
  },
  {
    // STYLE.md: no `any` in exported signatures; tests may poke at JSON loosely.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Shared, pure modules never import Node or the DOM.
    files: ['gateway/core/types.ts', 'gateway/control-api/types.ts', 'gateway/config/schema.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['node:*', 'fs', 'path', 'crypto'] }] },
  },
  {
    // The renderer talks only to the control API: no Node, no gateway internals beyond shared types.
    files: ['renderer/**/*.{ts,tsx}'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['node:*', '**/gateway/store/*', '**/gateway/cli/*'] }] },
  },
);
