// Hardware (devlink trap) drops on a real kernel: a qemu boot with netdevsim (the hw layer; shared with the run's other
// qemu sessions, last, see test/qemu/suite.ts) runs test/netdm/guest/hardware.sh, which drives Debian's dropwatch and dwdump and ours through the same steps. The host
// holds each tool's counts against devlink's own counters, our lines against Debian's, and each packet we print
// against Wireshark's decode of the same alert. Skips when the guest or the hw layer cannot be had.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractBase64, keepTranscript, type GuestResult } from '../qemu/harness.js';
import { sessionResult, sessionUnavailable } from '../qemu/suite.js';
import { pcapAlerts, type PcapAlert } from '../helpers/netdm-pcap.js';
import { tsharkAvailable, tsharkFields } from '../helpers/tshark.js';
import { pcapTimeOfNs } from '../helpers/pcap-time.js';
import {
  TRAPS,
  TRAP_NAMES,
  GROUP,
  TRAP_FRAME_LEN,
  TRAP_SRC,
  TRAP_DST,
  DROP_LINE,
  reported,
  summed,
} from '../helpers/traps.js';
import { validateEvent } from '../helpers/schema.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** dropwatch's "timestamp: Mon Nov 30 06:23:56 2026 676896000 nsec" (UTC in the guest) as nanoseconds. */
function timestampNs(line: string): bigint {
  const m = /^timestamp: \w{3} (\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\d{4}) (\d+) nsec$/.exec(line);
  assert.ok(m, `not a timestamp line: ${line}`);
  const ms = Date.UTC(Number(m[6]), MONTHS.indexOf(m[1]!), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
  return BigInt(ms) * 1_000_000n + BigInt(m[7]!);
}

/** dropwatch's text output as its packet blocks (from "drop at:" to the blank line) and the lines around them. */
function split(lines: string[]): { blocks: string[][]; rest: string[] } {
  const blocks: string[][] = [];
  const rest: string[] = [];
  let cur: string[] | null = null;
  for (const l of lines) {
    if (l.startsWith('drop at: ')) cur = [l];
    else if (cur !== null && l === '') {
      blocks.push(cur);
      cur = null;
    } else if (cur !== null) cur.push(l);
    else rest.push(l);
  }
  return { blocks, rest };
}

// Wireshark's reading of each alert: net_dm's own fields and the layers of the packet it carries.
const TSHARK_FIELDS = [
  'frame.number',
  'net_dm.origin',
  'net_dm.hw_trap_name',
  'net_dm.hw_trap_group_name',
  'net_dm.port.netdev_index',
  'net_dm.port.netdev_name',
  'net_dm.symbol',
  'net_dm.proto',
  'net_dm.orig_len',
  'ip.src',
  'ip.dst',
  'ip.proto',
  'udp.srcport',
  'udp.dstport',
  'udp.length',
];
/** What makes two captured alerts the same kind: Wireshark's fields but the frame, lengths and ports. */
const KIND_FIELDS = TSHARK_FIELDS.filter((f) => f.startsWith('net_dm.') && f !== 'net_dm.orig_len').concat([
  'ip.src',
  'ip.dst',
  'ip.proto',
]);

test('hardware drops in qemu: netdevsim traps through Debian dropwatch/dwdump and ours, side by side', async (t) => {
  // The session (test/netdm/guest/hardware.sh) and its options are in test/qemu/suite.ts, which may share its boot.
  const why = await sessionUnavailable('hardware');
  if (why !== null) {
    t.skip(why);
    return;
  }
  const r: GuestResult = await sessionResult('hardware');
  const { work, sec } = keepTranscript(t, r, 'netdm-hw');
  assert.equal(r.exitCode, 0, r.stderr);
  const pcap = (name: string): string => {
    const path = join(work, `${name}.pcap`);
    writeFileSync(path, extractBase64(r.stdout, name.toUpperCase()));
    return path;
  };

  // Ours ran summary mode, then packet mode from "set alertmode packet" on, in one process; Debian's in two.
  const part = (who: string, mode: 'summary' | 'packet'): string[] => {
    const lines = who === 'ours' ? sec('dropwatch-ours') : sec(`${mode}-theirs`);
    const cut = (at: number) => {
      assert.ok(at > 0, `${who} ${mode}: ${lines.join(' | ')}`);
      return mode === 'summary' ? lines.slice(0, at) : lines.slice(at);
    };
    if (who === 'ours') return cut(lines.indexOf('dropwatch> set alertmode packet'));
    // Debian's summary process ends at EOF after the stop; its packet process first sets sw and hw again.
    return mode === 'summary'
      ? cut(lines.indexOf('dropwatch> Terminating dropwatch...'))
      : cut(lines.indexOf('dropwatch> set alertmode packet'));
  };

  const setup = sec('setup');
  const port = /^ifname=(\S+) ifindex=(\d+)$/.exec(setup.find((l) => l.startsWith('ifname=')) ?? '');
  assert.ok(port, setup.join('\n'));
  const ifname = port[1]!;
  const ifindex = Number(port[2]);

  await t.test('setup: psample and netdevsim load, device 1337 lists its traps, blackhole_route set to trap', () => {
    assert.ok(setup.includes('psample') && setup.includes('netdevsim'), setup.join('\n'));
    assert.ok(
      setup.some((l) => /^\s+name blackhole_route type drop .* action trap group l3_drops$/.test(l)),
      setup.join('\n'),
    );
  });

  await t.test('summary (set hw true): "N drops at TRAP [hardware]" lines that add up to devlink\'s counters', () => {
    for (const who of ['theirs', 'ours']) {
      const lines = part(who, 'summary');
      const want = reported(sec(`summary-${who}-before`), sec(`summary-${who}-after`));
      t.diagnostic(`${who}: devlink counted ${[...want].map(([n, c]) => `${c} ${n}`).join(', ')}`);
      for (const [name, count] of want) assert.ok(count > 0, `${who}: no ${name} drops in the pulse`);
      // set sw false: hardware lines only, each trap's lines summing to what the kernel reported for it.
      for (const l of lines.filter((x) => DROP_LINE.test(x)))
        assert.match(l, /^\d+ drops at [a-z_]+ \[hardware\]$/, `${who}: ${l}`);
      assert.deepEqual(summed(lines), want, `${who}: ${lines.join(' | ')}`);
      assert.ok(lines.includes('Got a stop message'), `${who}: ${lines.join(' | ')}`);
      for (const name of who === 'ours' ? ['dropwatch-ours'] : ['summary-theirs', 'packet-theirs'])
        assert.ok(sec(name).includes('rc=0'), `${name}: exit status`);
    }
    // Everything else the two print (prompts, settings, start and stop) is the same text.
    const rest = (who: string) =>
      part(who, 'summary').filter((l) => !DROP_LINE.test(l) && !l.startsWith('Lost before delivery'));
    assert.deepEqual(rest('ours'), rest('theirs'));
  });

  // Debian's dropwatch prints "Waiting for deactivation ack..." for each alert that arrives between its STOP request
  // and the kernel's answer, which the generator makes likely; ours reads them without a word.
  // Our flow line is ours alone: it is held against Wireshark below, and left out here.
  const packetLines = (who: string) =>
    part(who, 'packet').filter(
      (l) =>
        l !== 'Waiting for deactivation ack...' && !l.startsWith('Lost before delivery') && !l.startsWith('flow: '),
    );
  const ourBlocks = split(part('ours', 'packet')).blocks;
  // Alert limit 6: two of the generator's rounds of its three traps. Each round's alerts leave from the CPU it ran on,
  // and a slow emulator can let two rounds interleave, so blocks are compared as multisets.
  const twoRounds = TRAPS.flatMap((trap) => [trap, trap]);

  await t.test("packet mode: trap, group, origin, input port as Debian's dropwatch prints them", () => {
    const norm = (b: string[]) => b.map((l) => (l.startsWith('timestamp: ') ? 'timestamp: T' : l)).join('\n');
    const ours = split(packetLines('ours'));
    const theirs = split(packetLines('theirs'));
    assert.deepEqual(ours.rest, theirs.rest);
    assert.deepEqual(ours.blocks.map(norm).sort(), theirs.blocks.map(norm).sort());
    const expected = twoRounds.map(([trap, group]) =>
      [
        `drop at: ${trap} (${group})`,
        'origin: hardware',
        `input port ifindex: ${ifindex}`,
        `input port name: ${ifname}`,
        'timestamp: T',
        'protocol: 0x800',
        `length: ${TRAP_FRAME_LEN}`,
        `original length: ${TRAP_FRAME_LEN}`,
      ].join('\n'),
    );
    assert.deepEqual(ours.blocks.map(norm).sort(), expected.sort(), part('ours', 'packet').join('\n'));
    assert.ok(ours.rest.includes('Alert limit reached, deactivating!'));
  });

  const jsonPackets = sec('packet-ours-json')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

  await t.test('JSON packet mode: the trap fields, the input port, schema-valid', () => {
    assert.equal(jsonPackets.length, 6, sec('packet-ours-json').join('\n'));
    assert.deepEqual(jsonPackets.map((p) => String(p['trap'])).sort(), twoRounds.map(([trap]) => trap).sort());
    for (const p of jsonPackets) {
      assert.deepEqual(validateEvent(p), [], JSON.stringify(p));
      assert.equal(p['type'], 'packet');
      assert.equal(p['origin'], 'hardware');
      assert.equal(p['trapGroup'], GROUP.get(String(p['trap'])));
      assert.equal(p['ifindex'], ifindex);
      assert.equal(p['ifname'], ifname);
      assert.equal(p['pc'], null, 'a trap has no kernel address');
      assert.equal(p['symbol'], null);
      assert.equal(p['protocol'], 0x0800);
      assert.equal(p['length'], TRAP_FRAME_LEN);
      assert.equal(p['origLength'], TRAP_FRAME_LEN);
      // The flow of the trapped packet; its ports are random, so they are held against Wireshark below.
      assert.equal(p['l3'], 'ipv4');
      assert.equal(p['src'], TRAP_SRC);
      assert.equal(p['dst'], TRAP_DST);
      assert.equal(p['l4'], 'udp');
      assert.equal(typeof p['sport'], 'number');
      assert.equal(typeof p['dport'], 'number');
    }
  });

  await t.test("each packet we printed is one dwdump heard, and its flow is Wireshark's decode of it", (tt) => {
    const passiveLines = sec('passive');
    assert.ok(passiveLines.includes('rc=0'), passiveLines.join(' | '));
    const path = pcap('passive');
    const { alerts } = pcapAlerts(readFileSync(path));
    const byTime = new Map<bigint, PcapAlert>(alerts.map((a) => [a.drop.timestampNs!, a]));
    for (const a of alerts) assert.deepEqual(a.ts, pcapTimeOfNs(a.drop.timestampNs!), `frame ${a.frame}: record time`);
    // The kernel's timestamp names one alert: ours in text (to the nanosecond) and in JSON.
    const alertAt = (ns: bigint, what: string): PcapAlert => {
      const a = byTime.get(ns);
      assert.ok(a, `no alert at ${ns} (${what}) in the passive capture`);
      return a;
    };
    // What we printed of each: the flow as `ipv4 udp SRC.SPORT > DST.DPORT`, and in text the UDP payload length.
    const printed: { a: PcapAlert; flow: string; length?: number }[] = [];
    for (const b of ourBlocks) {
      const a = alertAt(timestampNs(b.find((l) => l.startsWith('timestamp: '))!), b[0]!);
      const m = /^flow: IP (\S+)\.(\d+) > (\S+)\.(\d+): UDP, length (\d+)$/.exec(
        b.find((l) => l.startsWith('flow: ')) ?? '',
      );
      assert.ok(m, `no UDP flow line in: ${b.join(' | ')}`);
      printed.push({ a, flow: `ipv4 udp ${m[1]}.${m[2]} > ${m[3]}.${m[4]}`, length: Number(m[5]) });
    }
    for (const p of jsonPackets) {
      const m = /^(.*)\.(\d{9})Z$/.exec(String(p['time']));
      assert.ok(m, String(p['time']));
      const a = alertAt(BigInt(Date.parse(`${m[1]}Z`)) * 1_000_000n + BigInt(m[2]!), String(p['trap']));
      assert.equal(p['payload'], Buffer.from(a.drop.payload!).toString('hex'));
      const [l3, l4, src, sport, dst, dport] = ['l3', 'l4', 'src', 'sport', 'dst', 'dport'].map((k) => String(p[k]));
      printed.push({ a, flow: `${l3} ${l4} ${src}.${sport} > ${dst}.${dport}` });
    }
    if (!tsharkAvailable()) {
      tt.skip('tshark is not installed (Debian package tshark)');
      return;
    }
    const rows = new Map(tsharkFields(path, TSHARK_FIELDS).map((row) => [Number(row['frame.number']), row]));
    for (const { a, flow, length } of printed) {
      const row = rows.get(a.frame);
      assert.ok(row, `tshark has no frame ${a.frame}`);
      assert.equal(row['net_dm.origin'], '1', 'hardware');
      assert.equal(row['net_dm.hw_trap_name'], a.drop.trapName);
      assert.equal(row['net_dm.hw_trap_group_name'], GROUP.get(a.drop.trapName!));
      assert.equal(row['net_dm.port.netdev_index'], String(ifindex));
      assert.equal(row['net_dm.port.netdev_name'], ifname);
      assert.equal(row['ip.src'], TRAP_SRC);
      assert.equal(row['ip.dst'], TRAP_DST);
      assert.equal(row['ip.proto'], '17');
      const from = `${row['ip.src']}.${row['udp.srcport']}`;
      const to = `${row['ip.dst']}.${row['udp.dstport']}`;
      assert.equal(flow, `ipv4 udp ${from} > ${to}`, `frame ${a.frame}: our flow and Wireshark's`);
      if (length !== undefined) assert.equal(length, Number(row['udp.length']) - 8, `frame ${a.frame}: UDP length`);
    }
  });

  await t.test(
    "dwdump -o hw / -o sw, ours and Debian's: each keeps its origin only, as many as the kernel counted; ours at drop time",
    (tt) => {
      for (const who of ['theirs', 'ours'])
        for (const o of ['hw', 'sw']) {
          const name = `dw-${who}-${o}`;
          const lines = sec(name);
          assert.ok(lines.includes('rc=0'), `${name}: ${lines.join(' | ')}`);
          const kernel = Number(lines.find((l) => l.startsWith('reported='))?.slice('reported='.length));
          assert.ok(kernel > 0, `${name}: the pulse made no hardware drops`);
          const { file, alerts } = pcapAlerts(readFileSync(pcap(name)));
          assert.equal(file.trailing, 0, `${name}: no partial record`);
          const hw = alerts.filter((a) => a.drop.origin === 'hardware');
          const sw = alerts.filter((a) => a.drop.origin === 'software');
          const datagrams = sw.filter(
            (a) =>
              Buffer.from(a.drop.payload ?? [])
                .subarray(14 + 20 + 8)
                .toString() === `${name}-`,
          );
          t.diagnostic(`${name}: ${hw.length} hardware and ${sw.length} software records, devlink counted ${kernel}`);
          // Ours stamps each record with the kernel's drop time (Debian's, with the time it wrote it).
          if (who === 'ours')
            for (const a of alerts)
              assert.deepEqual(a.ts, pcapTimeOfNs(a.drop.timestampNs!), `${name}: frame ${a.frame}`);
          if (o === 'hw') {
            assert.equal(sw.length, 0, `${name}: software records in a hardware capture`);
            assert.equal(hw.length, kernel, `${name}: every trap report the kernel counted, once`);
            for (const { drop } of hw) {
              assert.ok(TRAP_NAMES.includes(drop.trapName!), drop.trapName);
              assert.equal(drop.trapGroup, GROUP.get(drop.trapName!));
              assert.deepEqual(drop.inPort, { ifindex, name: ifname });
              assert.equal(drop.protocol, 0x0800);
              assert.equal(drop.origLen, TRAP_FRAME_LEN);
            }
            assert.deepEqual(new Set(hw.map((a) => a.drop.trapName)), new Set(TRAP_NAMES));
          } else {
            assert.equal(hw.length, 0, `${name}: hardware records in a software capture`);
            assert.equal(datagrams.length, 5, `${name}: the five datagrams to a closed port`);
            for (const { drop } of datagrams) assert.equal(drop.reason, 'NO_SOCKET');
          }
        }
      if (!tsharkAvailable()) {
        tt.skip('tshark is not installed (Debian package tshark)');
        return;
      }
      // Wireshark reads the same kinds of records in ours and theirs: the fields that do not change from one drop to
      // the next (addresses and ports of the trapped packets do not, the symbol of the datagrams' drop does).
      const kinds = (name: string) =>
        new Set(
          tsharkFields(join(work, `${name}.pcap`), TSHARK_FIELDS)
            .filter((row) => row['net_dm.origin'] === '1' || row['udp.dstport'] === '9')
            .map((row) => KIND_FIELDS.map((f) => row[f]).join(' ')),
        );
      for (const o of ['hw', 'sw']) {
        const ours = kinds(`dw-ours-${o}`);
        assert.ok(ours.size > 0, `tshark found nothing in dw-ours-${o}`);
        assert.deepEqual(ours, kinds(`dw-theirs-${o}`), `-o ${o}`);
      }
    },
  );
});
