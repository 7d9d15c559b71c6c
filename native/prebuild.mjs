// `npm pack` (prepack): builds the addon into prebuilds/linux-<arch>/ with prebuildify, so the packed tarball installs
// on a machine with no compiler. N-API: one file serves every Node >= 20. Tagged with the libc (glibc or musl),
// which node-gyp-build matches when it loads.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { localNodedir } from './nodedir.mjs';

const nodedir = localNodedir();
// prebuildify hands its environment to node-gyp, which takes npm_config_nodedir as --nodedir.
const env = nodedir ? { ...process.env, npm_config_nodedir: nodedir } : process.env;
const result = spawnSync('prebuildify', ['--napi', '--strip', '--tag-libc'], { stdio: 'inherit', env });
if (result.error) {
  console.error(`native/prebuild.mjs: cannot run prebuildify: ${result.error.message}`);
  process.exit(1);
}
if (result.status !== 0) process.exit(result.status ?? 1);
// prebuildify moves the build out of build/Release; a checkout keeps using its local build, so put a copy back.
const dir = join('prebuilds', `${process.platform}-${process.arch}`);
const built = readdirSync(dir).find((f) => f.endsWith('.node'));
mkdirSync(join('build', 'Release'), { recursive: true });
copyFileSync(join(dir, built), join('build', 'Release', 'netlink_native.node'));
