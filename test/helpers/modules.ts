// Which modules a node process resolves: a resolve hook preloaded with --import writes every URL to a file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A module resolve hook that writes every URL it resolves to the file named by DW_RESOLVED.
// Its own import is static: an import inside the hook would go through the hook again, without end.
const HOOK = `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.DW_RESOLVED, r.url + '\\n');
  return r;
}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOK)}`)});`;

/** Runs node with `args` and the hook, `stdin` as its input; asserts exit 0 and returns every URL resolved. */
export function resolvedModules(args: readonly string[], stdin = ''): string[] {
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

/** The modules of this package's dist/src among `urls`, as paths under it (`engine/session.js`). */
export function ownModules(urls: readonly string[]): string[] {
  return urls.flatMap((u) => {
    const m = /\/dist\/src\/(.+)$/.exec(u);
    return m ? [m[1]!] : [];
  });
}
