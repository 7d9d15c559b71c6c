// ESLint flat config: typescript-eslint's type-checked rules over src, test and bench.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'test/qemu/cache/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // An async method with no await is how we implement a Promise-returning interface (Backend, the readers):
      // a throw in it becomes a rejection, which callers rely on; dropping `async` would make it a synchronous throw.
      '@typescript-eslint/require-await': 'off',
      // node:test runs every test() and describe() it is given; their promises need no awaiting.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after'] },
          ],
        },
      ],
    },
  },
  // Plain JavaScript (guest scripts, build helpers) is outside the TypeScript project: no type information there.
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
