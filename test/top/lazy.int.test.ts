// The terminal UI library loads only for the live view: a run of the prompt resolves no Ink, React or Yoga module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../helpers/cli.js';
import { canRunKernelTests } from '../helpers/kernel.js';

const HEAVY = /\/node_modules\/(ink|react|react-reconciler|yoga-layout)\//;

// A module resolve hook that writes every URL it resolves to the file named by DW_RESOLVED.
// Its own import is static: an import inside the hook would go through the hook again, without end.
const HOOK = `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.DW_RESOLVED, r.url + '\\n');
  return r;
}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOK)}`)});`;

/** Runs node with the hook; returns every URL resolved. */
function resolved(args: string[], stdin = ''): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'dwtest-lazy-'));
  try {
    const log = join(dir, 'resolved');
    const r = spawnSync(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, ...args],
      { input: stdin, encoding: 'utf8', env: { ...process.env, DW_RESOLVED: log, NO_COLOR: '1' }, timeout: 60_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    return readFileSync(log, 'utf8').trim().split('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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
