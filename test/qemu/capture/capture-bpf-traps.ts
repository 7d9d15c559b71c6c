// Regenerates test/fixtures/bpf/trap-counts-netdevsim.bin and trap-packets-netdevsim.bin: what the bpf addon hands
// over for hardware drops (traps() and consumeTraps() in native/bpf.cc) on a real kernel, from one boot of the qemu
// guest with the hw layer: netdevsim's trap generator, one port up for a second in summary mode, then in packet mode.
//
//   npx tsc -p . && node dist/test/qemu/capture/capture-bpf-traps.js
//
// Not a test: run by hand (root, the bpf addon built) when the record layouts change, then review the diff.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractBase64, guestUnavailable, layerUnavailable, runInGuest } from '../harness.js';
import { fixturePath } from '../../helpers/paths.js';

const SCRIPT = `
import { createRequire } from 'node:module';
import { execSync } from 'node:child_process';
const addon = createRequire('/project/')('/project/build/Release/bpf_native.node');
const sh = (c) => execSync(c, { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
sh('insmod /lib/modules/psample.ko; insmod /lib/modules/netdevsim.ko; echo "1337 1" >/sys/bus/netdevsim/new_device');
const dev = sh('ls /sys/bus/netdevsim/devices/netdevsim1337/net/').trim();
sh('/usr/sbin/devlink trap set netdevsim/netdevsim1337 trap blackhole_route action trap');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pulse = async () => { sh('ip link set ' + dev + ' up'); await sleep(1000); sh('ip link set ' + dev + ' down'); await sleep(300); };
const emit = (name, b) => console.log('@@' + name + '-BEGIN@@\\n' + b.toString('base64') + '\\n@@' + name + '-END@@');
const p = new addon.BpfProgram();
console.log('hardware ' + p.hardware());
p.configure(0, 256, 1 << 19);
p.attachTraps();
await pulse();
emit('COUNTS', p.traps());
p.configure(1, 256, 1 << 19);
await pulse();
p.detachTraps();
emit('PACKETS', p.consumeTraps(1 << 20));
console.log('lost ' + p.trapsLost().join(' '));
p.close();
`;

const why = (await guestUnavailable()) ?? (await layerUnavailable('hw'));
if (why !== null) throw new Error(why);
const r = await runInGuest(SCRIPT, { lang: 'node', layers: ['hw'], timeoutMs: 240_000 });
if (r.exitCode !== 0) throw new Error(`guest: ${r.stderr}`);
console.log(
  r.stdout
    .split('\n')
    .filter((l) => /^(hardware|lost) /.test(l))
    .join('\n'),
);
writeFileSync(join(fixturePath('bpf'), 'trap-counts-netdevsim.bin'), extractBase64(r.stdout, 'COUNTS'));
writeFileSync(join(fixturePath('bpf'), 'trap-packets-netdevsim.bin'), extractBase64(r.stdout, 'PACKETS'));
