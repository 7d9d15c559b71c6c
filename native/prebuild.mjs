// `npm pack` (prepack): builds the netlink addon into prebuilds/linux-<arch>/ with prebuildify, so the packed tarball
// installs on a machine with no compiler. N-API: one file serves every Node >= 20. Tagged with the libc (glibc or
// musl), which node-gyp-build matches when it loads. Then the BPF addon (its object embedded) goes beside it in bpf/,
// where node-gyp-build does not look and src/bpf/native.ts does.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { localNodedir } from './nodedir.mjs';

const nodedir = localNodedir();
// prebuildify hands its environment to node-gyp, which takes npm_config_nodedir as --nodedir.
const env = nodedir ? { ...process.env, npm_config_nodedir: nodedir } : { ...process.env };
// prebuildify packs the first addon it finds: build the netlink one alone here.
const result = spawnSync('prebuildify', ['--napi', '--strip', '--tag-libc'], {
  stdio: 'inherit',
  env: { ...env, DROPWATCH_BPF: '0' },
});
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

// Both addons again, into build/Release; the BPF one only where clang and libbpf-dev are (native/bpf-toolchain.mjs).
const rebuild = spawnSync(process.execPath, [join('native', 'build.mjs')], { stdio: 'inherit' });
if (rebuild.status !== 0) process.exit(rebuild.status ?? 1);
const bpfAddon = join('build', 'Release', 'bpf_native.node');
if (existsSync(bpfAddon)) {
  mkdirSync(join(dir, 'bpf'), { recursive: true });
  copyFileSync(bpfAddon, join(dir, 'bpf', 'bpf_native.node'));
  const strip = spawnSync('strip', ['--strip-all', join(dir, 'bpf', 'bpf_native.node')], { stdio: 'inherit' });
  if (strip.status !== 0) process.exit(strip.status ?? 1);
}
