// Runs the compiled tests under dist/test with node:test (Node 20's --test takes no globs), in two batches.
//
// Whether a test is a unit or an integration test is in its file name, so no list elsewhere can drift:
//   <name>.int.test.ts  integration: needs root, changes kernel or machine state (tracefs instances, network
//                       namespaces), runs bin/dropwatch or bin/dwdump, or boots the qemu guest. One file at a time:
//                       they count real drops through the kernel's one tracepoint and share the two CPUs.
//   <name>.test.ts      unit: in-process, any user, quick (reading /proc or opening an unprivileged netlink socket
//                       is fine). Several files at once.
// Forgetting the .int fails loudly instead of running a root test among the unit ones: the helpers integration
// tests use (test/helpers/kernel.ts, netns.ts, cli.ts, the qemu harness's guest) throw when DROPWATCH_TEST_BATCH
// is "unit" (test/helpers/suite.ts).
//
//   node test/run.mjs                  unit batch, then integration batch (npm test)
//   node test/run.mjs --unit           unit batch only; passes as any user (npm run test:unit)
//   node test/run.mjs --integration    integration batch only
//   node test/run.mjs SUBSTRING...     only files whose compiled path contains one of the substrings
//
// Files are listed from the sources in test/, so a stale compiled file whose source was renamed never runs.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--')));
const only = args.filter((a) => !a.startsWith('--'));
for (const f of flags) {
  if (f !== '--unit' && f !== '--integration') {
    console.error(`unknown option ${f} (--unit, --integration)`);
    process.exit(2);
  }
}

const files = collect(join(root, 'test'))
  .map((src) => join('dist', relative(root, src)).replace(/\.ts$/, '.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
const missing = files.filter((f) => !existsSync(join(root, f)));
if (missing.length > 0) {
  console.error(`not built (run npm run build): ${missing.join(', ')}`);
  process.exit(1);
}

const batches = [
  { kind: 'unit', files: files.filter((f) => !f.endsWith('.int.test.js')), concurrency: availableParallelism() },
  { kind: 'integration', files: files.filter((f) => f.endsWith('.int.test.js')), concurrency: 1 },
].filter((b) => !flags.has(`--${b.kind === 'unit' ? 'integration' : 'unit'}`) && b.files.length > 0);
if (batches.length === 0) {
  console.error('no test files match');
  process.exit(1);
}

let failed = false;
for (const b of batches) {
  console.log(`# ${b.kind} batch: ${b.files.length} files, ${b.concurrency} at a time`);
  const result = spawnSync(process.execPath, ['--test', `--test-concurrency=${b.concurrency}`, ...b.files], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, DROPWATCH_TEST_BATCH: b.kind },
  });
  if (result.status !== 0) {
    console.log(`# ${b.kind} batch failed (exit ${result.status ?? result.signal})`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
