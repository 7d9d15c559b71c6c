// The packed tarball on a production machine: `npm pack` prebuilds the addon and bundles the dependencies, then
// `npm install -g` into a temporary prefix, offline, with a PATH holding only node, npm and sh (no g++, make or
// python3), and the installed programs run: --version, and a real `-s -d 1` run that counts drops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { countDrops } from '../helpers/cli.js';

const root = process.cwd();
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

/** The highest GLIBC_x.y a shared object needs, from objdump -T; null without objdump. */
function glibcNeeded(file: string): string | null {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const versions = [...r.stdout.matchAll(/\(GLIBC_(\d+)\.(\d+)\)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  versions.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  const top = versions.at(-1);
  return top ? `${top[0]}.${top[1]}` : null;
}

test(
  'npm pack, then npm install -g with no compiler on the PATH and no registry: it installs, and runs',
  { skip: canRunKernelTests() },
  async (t) => {
    const work = mkdtempSync(join(tmpdir(), 'dwtest-pack-'));
    const ns = new Netns();
    t.after(() => {
      ns.delete();
      rmSync(work, { recursive: true, force: true });
    });
    const pack = spawnSync('npm', ['pack', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
    assert.equal(pack.status, 0, pack.stderr);
    const tarball = join(work, `dropwatch-${version}.tgz`);
    const listing = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' });
    const prebuild = listing.split('\n').find((f) => /^package\/prebuilds\/linux-x64\/[^/]*\.node$/.test(f));
    assert.ok(prebuild, 'the tarball holds a prebuilt addon for linux-x64');
    // Where this checkout could build the BPF addon (clang, libbpf-dev), the tarball carries it, its object inside.
    const bpfPrebuild = existsSync(join(root, 'build/Release/bpf_native.node'));
    if (bpfPrebuild) assert.ok(listing.includes('package/prebuilds/linux-x64/bpf/bpf_native.node'), listing);
    assert.ok(!existsSync(join(root, 'prebuilds')), 'npm pack leaves no prebuilds/ in the checkout');
    assert.ok(existsSync(join(root, 'build/Release/netlink_native.node')), 'and keeps its local build');

    // A machine with node and npm and nothing to build with.
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(
      realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim()),
      join(bin, 'npm'),
    );
    symlinkSync('/bin/sh', join(bin, 'sh'));
    for (const tool of ['g++', 'gcc', 'cc', 'make', 'python3'])
      assert.notEqual(spawnSync('sh', ['-c', `command -v ${tool}`], { env: { PATH: bin } }).status, 0, tool);
    const env = { HOME: process.env.HOME ?? '/root', PATH: bin };
    // A fresh machine's npm cache holds what `npm ci` fetched by the lock file, not the package documents an install by
    // version range reads: an install online into a scratch prefix, scripts off, caches them (a failure here is left
    // for the offline install to report).
    const scratch = join(work, 'scratch');
    mkdirSync(join(scratch, 'lib'), { recursive: true });
    spawnSync('npm', ['install', '-g', '--prefix', scratch, '--ignore-scripts', '--no-audit', '--no-fund', tarball], {
      encoding: 'utf8',
    });
    const prefix = join(work, 'prefix');
    const install = spawnSync(
      join(bin, 'npm'),
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--offline',
        '--no-audit',
        '--no-fund',
        '--allow-scripts=dropwatch',
        tarball,
      ],
      { env, encoding: 'utf8' },
    );
    assert.equal(install.status, 0, install.stderr);
    const installed = join(prefix, 'lib', 'node_modules', 'dropwatch');
    assert.ok(!existsSync(join(installed, 'build')), `nothing was compiled: ${readdirSync(installed).join(' ')}`);

    const glibc = glibcNeeded(join(installed, prebuild.replace(/^package\//, '')));
    if (glibc !== null) {
      const [major, minor] = glibc.split('.').map(Number);
      t.diagnostic(`the prebuilt addon needs glibc ${glibc}`);
      // Node 20's own floor: the addon must not ask for more.
      assert.ok(major! < 2 || (major === 2 && minor! <= 28), `needs glibc ${glibc}`);
    }

    for (const program of ['dropwatch', 'dwdump']) {
      const r = spawnSync(join(prefix, 'bin', program), ['--version'], { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `${program} ${version}\n`);
    }

    // A real run. auto asks NET_DM first through the addon, so an addon that does not load fails here.
    const child = spawn(join(prefix, 'bin', 'dropwatch'), ['-s', '-d', '2', '--filter', 'reason == NO_SOCKET'], {
      env: { ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const started = Date.now();
    while (!stderr.includes('Kernel monitoring activated.')) {
      assert.ok(child.exitCode === null && Date.now() - started < 10_000, `monitoring never started: ${stderr}`);
      await sleep(25);
    }
    const sent = 50;
    await ns.sendUdp('127.0.0.1', sent);
    assert.equal(await exited, 0, stderr);
    const counted = countDrops(stdout, '__udp4_lib_rcv', 'NO_SOCKET');
    t.diagnostic(`installed dropwatch: sent ${sent}, counted ${counted}`);
    assert.ok(counted >= sent, `counted ${counted} < ${sent}\n${stdout}\n${stderr}`);

    if (!bpfPrebuild) return;
    // The installed bpf source: the prebuilt addon and its embedded object, no compiler.
    const bpf = spawnSync(join(prefix, 'bin', 'dropwatch'), ['-b', 'bpf', '-s', '-d', '1'], {
      env: { ...env, NO_COLOR: '1' },
      encoding: 'utf8',
    });
    assert.equal(bpf.status, 0, bpf.stderr);
    assert.match(bpf.stderr, /Kernel monitoring activated\./);
  },
);
