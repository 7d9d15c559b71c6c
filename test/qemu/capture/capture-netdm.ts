// Regenerates test/fixtures/netdm/ from a real NET_DM kernel: boots the qemu guest once, runs
// session.sh there (nlcapture.py for raw messages, then Debian's dropwatch/dwdump under nlmon) and
// writes every file the guest emitted plus manifest.json describing each message.
//
//   npx tsc -p . && node dist/test/qemu/capture/capture-netdm.js
//
// Not a test: run by hand when the fixtures need refreshing, then review the diff (addresses and
// timestamps change with the kernel package and the clock; the structure must not).
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { guestUnavailable, kernelInfo, runInGuest } from '../harness.js';
import { fixturePath, projectRoot } from '../../helpers/paths.js';

interface Meta {
  name: string;
  [key: string]: unknown;
}

async function main(): Promise<void> {
  const why = await guestUnavailable();
  if (why !== null) {
    console.error(why);
    process.exit(1);
  }
  const here = join(projectRoot, 'test', 'qemu', 'capture');
  const outDir = fixturePath('netdm');
  const r = await runInGuest(readFileSync(join(here, 'session.sh'), 'utf8'), {
    layers: ['python'],
    timeoutMs: 600_000,
    files: {
      '/guest/nlcapture.py': readFileSync(join(here, 'nlcapture.py')),
      '/guest/send.mjs': readFileSync(join(here, 'send.mjs')),
    },
  });
  if (r.exitCode !== 0 || !r.moduleLoaded) {
    console.error(r.stdout, r.stderr);
    throw new Error(`guest session failed: exit ${r.exitCode}, module ${r.moduleError ?? 'ok'}`);
  }
  const files = new Map<string, Buffer>();
  for (const m of r.stdout.matchAll(/^@@FILE ([^@\n]+)@@\n([\s\S]*?)^@@ENDFILE@@$/gm)) {
    files.set(m[1]!, Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
  }
  const metas: Meta[] = [...r.stdout.matchAll(/^@@META (.*)@@$/gm)].map((m) => JSON.parse(m[1]!) as Meta);
  const info = [...r.stdout.matchAll(/^@@INFO (.*)@@$/gm)].map((m) => m[1]!);
  const errors = [...r.stdout.matchAll(/^@@ERROR (.*)@@$/gm)].map((m) => m[1]!);
  if (errors.length > 0) throw new Error(`guest reported: ${errors.join('; ')}\n${r.stderr}`);
  if (metas.length === 0 || files.size === 0) throw new Error(`nothing captured:\n${r.stdout}\n${r.stderr}`);

  // Replace only what an earlier capture wrote (the manifest lists it), never other files here.
  const manifestPath = join(outDir, 'manifest.json');
  if (existsSync(manifestPath)) {
    const old = JSON.parse(readFileSync(manifestPath, 'utf8')) as { files?: string[] };
    for (const f of old.files ?? []) rmSync(join(outDir, f), { force: true });
  }
  mkdirSync(outDir, { recursive: true });
  for (const [name, data] of files) {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`unsafe fixture name ${name}`);
    writeFileSync(join(outDir, name), data);
  }
  const kernelDir = kernelInfo();
  const kpkgDir = kernelDir === null ? null : join(kernelDir.kernel, '..');
  const manifest = {
    capturedAt: new Date().toISOString(),
    kernel: {
      release: r.kernelRelease,
      package: kpkgDir === null ? null : readFileSync(join(kpkgDir, 'package'), 'utf8').trim(),
      version: kpkgDir === null ? null : readFileSync(join(kpkgDir, 'version'), 'utf8').trim(),
      boot: 'qemu-system-x86_64 -accel tcg -smp 2 -m 2048, cmdline nokaslr (see test/qemu/harness.ts)',
    },
    // The guest runs the host's Debian binaries (copied with their libraries by setup.sh).
    tools: Object.fromEntries(
      ['dropwatch', 'tcpdump', 'libpcap0.8', 'libnl-genl-3-200', 'python3', 'busybox-static'].map((p) => [
        p,
        spawnSync('dpkg-query', ['-W', '-f', '${Version}', p], { encoding: 'utf8' }).stdout || null,
      ]),
    ),
    info,
    files: [...files.keys()].sort(),
    messages: metas,
  };
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${files.size} files to ${outDir} (guest run ${r.durationMs} ms)`);
  if (r.stderr.trim() !== '') console.log(`guest stderr:\n${r.stderr}`);
}

await main();
