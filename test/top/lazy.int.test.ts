// The terminal UI library loads only for the live view: a run of the prompt resolves no Ink, React or Yoga module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { BIN } from '../helpers/cli.js';
import { canRunKernelTests } from '../helpers/kernel.js';
import { resolvedModules as resolved } from '../helpers/modules.js';

const HEAVY = /\/node_modules\/(ink|react|react-reconciler|yoga-layout)\//;

test('the prompt starts without Ink, React or Yoga; the view module brings them', { skip: canRunKernelTests() }, () => {
  const prompt = resolved([BIN, '-l', 'kas'], 'help\nexit\n');
  assert.ok(
    prompt.some((u) => u.includes('/dist/src/repl/')),
    'the hook saw our own modules',
  );
  assert.deepEqual(
    prompt.filter((u) => HEAVY.test(u)),
    [],
  );
  // The same hook does see them when the view is imported: the check above can fail.
  const view = resolved([
    '--input-type=module',
    '-e',
    `await import(${JSON.stringify(join(process.cwd(), 'dist/src/top/run.js'))})`,
  ]);
  assert.ok(view.some((u) => HEAVY.test(u)));
});
