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
    // Layering by folder: gateway/common/ is runtime-neutral (the renderer runs it too), so it
    // imports nothing but itself: no Node, no packages, no other gateway folder.
    files: ['gateway/common/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^(?!\\./)', message: 'gateway/common/ imports only gateway/common/ (runtime-neutral code)' }] }],
    },
  },
  {
    // The renderer talks only to the control API: no Node, and from the gateway only gateway/common/.
    files: ['renderer/**/*.{ts,tsx}'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^node:', message: 'the renderer runs in a browser' },
            { regex: '(^|/)gateway/(?!common/)', message: 'the renderer may import only gateway/common/ from the gateway' },
          ],
        },
      ],
    },
  },
);
