// Regenerates test/fixtures/packet/guest-vlan.pcap and guest-netdm.pcap, with tshark's reading of each: the frames
// this machine's kernel cannot make (802.1Q and 802.1ad tags) and NET_DM packet alerts of IPv4/IPv6 UDP and TCP
// drops, from one boot of the qemu guest (test/qemu/capture/vlan.sh). The guest kernel's VLAN and dummy modules come
// from the same Debian package the harness boots, downloaded with apt-get.
//
//   npx tsc -p . && node dist/test/qemu/capture/capture-vlan.js
//
// Not a test: run by hand (root, apt-get, tshark) when the fixtures need refreshing, then review the diff.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cacheDir, extractBase64, guestUnavailable, runInGuest } from '../harness.js';
import { fixturePath, projectRoot } from '../../helpers/paths.js';

const MODULES = ['net/llc/llc', 'net/802/stp', 'net/802/garp', 'net/802/mrp', 'net/8021q/8021q', 'drivers/net/dummy'];

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The guest kernel's modules, from the package the harness unpacked its kernel from. */
function modules(): Record<string, Buffer> {
  const kernel = readdirSync(cacheDir).find((d) => d.startsWith('kernel-'));
  if (kernel === undefined) throw new Error(`no kernel in ${cacheDir}`);
  const pkg = readFileSync(join(cacheDir, kernel, 'package'), 'utf8').trim();
  const tmp = mkdtempSync(join(tmpdir(), 'dwflow-kernel-'));
  try {
    run('apt-get', ['download', pkg], tmp);
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'))!;
    run('dpkg-deb', ['-x', deb, 'x'], tmp);
    const release = readdirSync(join(tmp, 'x', 'lib', 'modules'))[0]!;
    const out: Record<string, Buffer> = {};
    for (const m of MODULES) {
      const name = m.split('/').at(-1)!;
      out[`/guest/mod/${name}.ko`] = readFileSync(join(tmp, 'x', 'lib', 'modules', release, 'kernel', `${m}.ko`));
    }
    return out;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// tshark's fields for each frame, as host-flows.tshark.tsv has them, plus the tags (802.1ad and 802.1Q) and the
// NET_DM protocol.
const FIELDS = [
  'frame.number',
  'eth.type',
  'ieee8021ad.id',
  'vlan.id',
  'ip.src',
  'ip.dst',
  'ip.proto',
  'ipv6.src',
  'ipv6.dst',
  'ipv6.nxt',
  'tcp.srcport',
  'tcp.dstport',
  'tcp.flags',
  'udp.srcport',
  'udp.dstport',
  'udp.length',
  'arp.opcode',
  'arp.src.proto_ipv4',
  'arp.dst.proto_ipv4',
  'net_dm.proto',
  'frame.protocols',
];

function tsv(pcap: string): string {
  // Every occurrence of each field, joined by commas: tags nest, and an ICMP error quotes a packet.
  const rows = run(
    'tshark',
    ['-r', pcap, '-T', 'fields', '-E', 'separator=/t', '-E', 'aggregator=,', '-E', 'occurrence=a'].concat(
      FIELDS.flatMap((f) => ['-e', f]),
    ),
  );
  return `${FIELDS.join('\t')}\n${rows}`;
}

async function main(): Promise<void> {
  const why = await guestUnavailable();
  if (why !== null) throw new Error(why);
  const files = modules();
  const r = await runInGuest(readFileSync(join(projectRoot, 'test', 'qemu', 'capture', 'vlan.sh'), 'utf8'), {
    files,
    timeoutMs: 300_000,
  });
  if (r.exitCode !== 0) throw new Error(`guest session failed: exit ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  for (const [name, block] of [
    ['guest-vlan', 'VLAN'],
    ['guest-netdm', 'NETDM'],
  ] as const) {
    const pcap = fixturePath('packet', `${name}.pcap`);
    writeFileSync(pcap, extractBase64(r.stdout, block));
    writeFileSync(fixturePath('packet', `${name}.tshark.tsv`), tsv(pcap));
    console.log(`wrote ${pcap} and ${name}.tshark.tsv (${r.kernelRelease})`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
