// npm's install step. A prebuilt addon in prebuilds/ (what `npm pack` puts in the tarball) that loads on this machine
// is used as it is: no compiler, make or python needed. Otherwise, or with --build-from-source, the addon is built
// from source (native/build.mjs), as a checkout of the repository always does.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function prebuildLoads() {
  if (process.env.npm_config_build_from_source === 'true') return false;
  // In a child, as node-gyp-build's own test does: loading is the only sure test (a libc too old shows only then).
  // PREBUILDS_ONLY: a build/ left in a checkout must not pass for a prebuild.
  const probe = spawnSync(process.execPath, ['-e', `require('node-gyp-build')(${JSON.stringify(root)})`], {
    cwd: root,
    env: { ...process.env, PREBUILDS_ONLY: '1' },
    stdio: 'ignore',
  });
  return probe.status === 0;
}

if (!prebuildLoads()) {
  const build = spawnSync(process.execPath, [fileURLToPath(new URL('build.mjs', import.meta.url))], {
    stdio: 'inherit',
  });
  process.exit(build.status ?? 1);
}
