// dwdump on the bpf source, on this host's kernel (no NET_DM): the built bin/dwdump captures UDP drops made in a
// namespace this test creates into a pcap of NET_DM records, which our codec and Wireshark's net_dm dissector (tshark)
// read as drop_monitor's own: the family record first, then one PACKET_ALERT per drop with its flow and reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { canRunKernelTests } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';
import { DWDUMP_BIN } from '../helpers/cli.js';
import { tsharkAvailable, tsharkFields } from '../helpers/tshark.js';
import { decodePcap, decodeSll, LINKTYPE_NETLINK } from '../../src/pcap/index.js';
import { decodeNlMsgs } from '../../src/netlink/codec.js';
import { decodeFamily } from '../../src/netlink/nlctrl.js';
import { decodePacketAlert, NET_DM_CMD_PACKET_ALERT, netdmCommand } from '../../src/netdm/codec.js';
import { projectRoot } from '../helpers/paths.js';

const skip =
  canRunKernelTests() ||
  (existsSync(join(projectRoot, 'build', 'Release', 'bpf_native.node')) ? false : 'the bpf addon is not built');

const V4 = 20;
const V6 = 10;

/** A dwdump process: its stderr collected, its exit awaited. */
function dwdump(args: string[]): {
  stderr: () => string;
  done: Promise<number | null>;
  kill: (s: NodeJS.Signals) => void;
} {
  const child = spawn(process.execPath, [DWDUMP_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { stderr: () => stderr, done, kill: (s) => child.kill(s) };
}

/** UDP datagrams to port 9 (closed) on `host` in the namespace, payloads `TOKEN-i`, one socket each. */
function send(ns: Netns, host: string, token: string, n: number): Promise<void> {
  const family = host.includes(':') ? 'udp6' : 'udp4';
  const code =
    `const d=require('dgram');let i=0;(function f(){if(i++>=${n})return;const s=d.createSocket('${family}');` +
    `s.send('${token}-'+i,9,'${host}',()=>{s.close();f()})})()`;
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', code], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`sender exited ${c}`))));
  });
}

/** How many records of the file hold a payload starting with `token` (the capture in progress, read as it is). */
function holding(path: string, token: string): number {
  try {
    return readFileSync(path, 'latin1').split(`${token}-`).length - 1;
  } catch {
    return 0;
  }
}

/** Runs dwdump with `args` while the namespace drops V4 + V6 tokened datagrams; its exit code and stderr. */
async function capture(ns: Netns, path: string, token: string, args: string[]): Promise<[number | null, string]> {
  const run = dwdump(['-w', path, ...args]);
  const deadline = Date.now() + 20_000;
  while (!run.stderr().includes('dwdump: capturing') && Date.now() < deadline) await sleep(20);
  assert.match(run.stderr(), /dwdump: capturing/, run.stderr());
  await send(ns, '127.0.0.1', token, V4);
  await send(ns, '::1', token, V6);
  while (holding(path, token) < V4 + V6 && Date.now() < deadline) await sleep(50);
  run.kill('SIGINT');
  return [await run.done, run.stderr()];
}

/** tshark's net_dm dissector on the capture at `path`: the tokened drops' flows, origin, port, symbol and reason. */
function assertTsharkReads(path: string, token: string): void {
  const fields = ['frame.protocols', 'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst', 'udp.dstport', 'data.data'];
  fields.push('net_dm.origin', 'net_dm.symbol', 'net_dm.port.netdev_index', 'net_dm.attr_type', 'netlink.attr_data');
  const rows = tsharkFields(path, fields, 'net_dm.cmd == 5').filter((r) =>
    Buffer.from(r['data.data'] ?? '', 'hex')
      .toString()
      .startsWith(`${token}-`),
  );
  assert.equal(rows.length, V4 + V6);
  const flows = rows.map((r) =>
    r['ip.src'] !== ''
      ? `${r['ip.src']} > ${r['ip.dst']}:${r['udp.dstport']}`
      : `${r['ipv6.src']} > ${r['ipv6.dst']}:${r['udp.dstport']}`,
  );
  assert.equal(flows.filter((f) => f === '127.0.0.1 > 127.0.0.1:9').length, V4, flows.join(' | '));
  assert.equal(flows.filter((f) => f === '::1 > ::1:9').length, V6, flows.join(' | '));
  for (const r of rows) {
    assert.match(r['frame.protocols']!, /^netlink:genl:net_dm:eth:ethertype:ipv?6?:udp:data$/);
    assert.equal(r['net_dm.origin'], '0');
    assert.equal(r['net_dm.port.netdev_index'], '1');
    assert.match(r['net_dm.symbol']!, /^__udp[46]_lib_rcv\+0x[0-9a-f]+\/0x[0-9a-f]+$/);
    // Wireshark 4.0 knows no REASON attribute (23): it shows its bytes, which are the string the kernel would send.
    assert.ok(r['net_dm.attr_type']!.split(',').includes('23'), r['net_dm.attr_type']);
    assert.equal(Buffer.from(r['netlink.attr_data']!, 'hex').toString(), 'NO_SOCKET\0');
  }
}

describe('dwdump on the bpf source (this host kernel)', { skip }, () => {
  let ns: Netns;
  let work: string;
  /** The payload prefix of the first capture's datagrams (other processes drop at the same places meanwhile). */
  const token = `dwb${randomBytes(3).toString('hex')}`;
  before(() => {
    ns = new Netns();
    work = mkdtempSync(join(tmpdir(), 'dwtest-dwdump-bpf-'));
  });
  after(() => {
    ns.delete();
    rmSync(work, { recursive: true, force: true });
  });

  test('-B bpf: a NET_DM family record, then a PACKET_ALERT per drop, read back by our codec', async () => {
    const path = join(work, 'bpf.pcap');
    const [code, stderr] = await capture(ns, path, token, ['-B', 'bpf']);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /^dwdump: capturing software drops with bpf \(the first 256 bytes of each packet\)/m);
    const m = /^dwdump: (\d+) packets? written, 0 lost in the kernel$/m.exec(stderr);
    assert.ok(m && Number(m[1]) >= V4 + V6, stderr);
    const file = decodePcap(readFileSync(path));
    assert.equal(file.header.linktype, LINKTYPE_NETLINK);
    assert.equal(file.trailing, 0);
    assert.equal(file.records.length, Number(m[1]) + 1);
    const family = decodeFamily(decodeNlMsgs(decodeSll(file.records[0]!.data).payload)[0]!);
    assert.equal(family.name, 'NET_DM');
    const ours = file.records.slice(1).flatMap((r) => {
      const msg = decodeNlMsgs(decodeSll(r.data).payload)[0]!;
      assert.equal(msg.header.type, family.id);
      assert.equal(netdmCommand(msg), NET_DM_CMD_PACKET_ALERT);
      const p = decodePacketAlert(msg);
      const text = Buffer.from(p.payload ?? []).toString('latin1');
      return text.includes(`${token}-`) ? [p] : [];
    });
    assert.equal(ours.length, V4 + V6);
    for (const p of ours) {
      assert.equal(p.reason, 'NO_SOCKET');
      assert.match(p.symbol ?? '', p.protocol === 0x86dd ? /^__udp6_lib_rcv\+0x/ : /^__udp4_lib_rcv\+0x/);
      assert.deepEqual(p.inPort, { ifindex: 1 });
      assert.equal(p.payload!.length, p.origLen, 'small datagrams are captured whole');
    }
  });

  test('tshark reads the capture as NET_DM: flows (IPv4 and IPv6 to port 9) and the reason of each drop', (t) => {
    if (!tsharkAvailable()) {
      t.skip('tshark is not installed (Debian package tshark)');
      return;
    }
    assertTsharkReads(join(work, 'bpf.pcap'), token);
  });

  test('default (auto) on a kernel without NET_DM: says it uses bpf, and captures the same', async (t) => {
    const path = join(work, 'auto.pcap');
    const auto = `dwa${randomBytes(3).toString('hex')}`;
    const [code, stderr] = await capture(ns, path, auto, []);
    if (!stderr.includes('dwdump: using bpf')) {
      t.skip(`this kernel has NET_DM: ${stderr}`);
      return;
    }
    assert.equal(code, 0, stderr);
    assert.match(stderr, /^dwdump: using bpf \(this kernel has no drop monitor, NET_DM\)$/m);
    assert.equal(holding(path, auto), V4 + V6, stderr);
  });
});
