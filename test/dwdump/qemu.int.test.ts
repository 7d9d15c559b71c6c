// dwdump on a real NET_DM kernel: a qemu boot (Debian 6.1 + drop_monitor, shared with the run's other qemu sessions:
// see test/qemu/suite.ts) runs test/dwdump/guest/session.sh, which drives Debian's dwdump and ours through the same
// sessions. The host then checks our pcaps record by record with
// our NET_DM codec, against Debian's pcaps, and (when tshark is installed) through Wireshark's net_dm dissector.
// Skips when the guest cannot run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractBase64, keepTranscript, type GuestResult } from '../qemu/harness.js';
import { DWDUMP_DATAGRAMS, sessionResult, sessionUnavailable } from '../qemu/suite.js';
import { tsharkAvailable, tsharkFields } from '../helpers/tshark.js';
import { decodePcap, decodeSll, LINKTYPE_NETLINK, NETLINK_SLL, type PcapFile } from '../../src/pcap/index.js';
import { decodeNlMsgs, type NlMessage } from '../../src/netlink/codec.js';
import { decodeFamily } from '../../src/netlink/nlctrl.js';
import { decodePacketAlert, NET_DM_CMD_PACKET_ALERT, netdmCommand } from '../../src/netdm/codec.js';
import type { PacketDrop } from '../../src/backend/types.js';
import type { Timestamp } from '../../src/pcap/index.js';
import { nsOfPcapTime, pcapTimeOfNs } from '../helpers/pcap-time.js';

const N = DWDUMP_DATAGRAMS;

const SUMMARY = /^dwdump: (\d+) packets? written, (\d+) lost on our socket, (\d+) tail-dropped by the kernel$/;

function summary(lines: string[]): { written: number; lost: number; tail: number } {
  const m = lines.map((l) => SUMMARY.exec(l)).find((x) => x !== null);
  assert.ok(m, `no summary line in: ${lines.join(' | ')}`);
  return { written: Number(m[1]), lost: Number(m[2]), tail: Number(m[3]) };
}

/** Each record after the first as one NET_DM message (dwdump writes one message per record). */
function alerts(file: PcapFile): NlMessage[] {
  return file.records.slice(1).map((r, i) => {
    const msgs = decodeNlMsgs(decodeSll(r.data).payload);
    assert.equal(msgs.length, 1, `record ${i + 2} holds ${msgs.length} messages`);
    return msgs[0]!;
  });
}

/** The UDP payload of a dropped loopback datagram: Ethernet (14, zero addresses) + IPv4 (20) + UDP (8). */
const udpPayload = (p: PacketDrop): string => Buffer.from(p.payload!.subarray(14 + 20 + 8)).toString();
const udpDstPort = (p: PacketDrop): number => Buffer.from(p.payload!).readUInt16BE(14 + 20 + 2);

/**
 * Alerts in the order the drops happened (the kernel's TIMESTAMP): per-CPU queues can deliver a later drop first
 * (seen here: dw-18 before dw-17 in both tools' files), so file order is the kernel's, not the sender's.
 */
function byDropTime(msgs: NlMessage[]): PacketDrop[] {
  return msgs.map((m) => decodePacketAlert(m)).sort((x, y) => (x.timestampNs! < y.timestampNs! ? -1 : 1));
}

/** Each alert record's time, and its TIMESTAMP as a record time (the full decoder, BigInt arithmetic). */
function alertTimes(file: PcapFile): { record: Timestamp; dropped: Timestamp }[] {
  return file.records.slice(1).map((r, i) => {
    const ns = decodePacketAlert(decodeNlMsgs(decodeSll(r.data).payload)[0]!).timestampNs;
    assert.ok(ns !== undefined, `record ${i + 2} has no TIMESTAMP`);
    const dropped = pcapTimeOfNs(ns);
    assert.ok(dropped);
    return { record: r.ts, dropped };
  });
}

const sentPayloads = (n: number, prefix = 'dw-'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

// Wireshark's net_dm fields (tshark -G fields | grep net_dm, 4.0) and the layers under it. Left out on purpose: the
// timestamps, and the IP id, UDP source port and checksums, which differ between any two sends.
const TSHARK_FIELDS = [
  'frame.len',
  'frame.cap_len',
  'frame.protocols',
  'netlink.hatype',
  'netlink.family',
  'netlink.hdr_len',
  'netlink.hdr_type',
  'netlink.hdr_flags',
  'netlink.hdr_seq',
  'netlink.hdr_pid',
  'net_dm.cmd',
  'net_dm.attr_type',
  'net_dm.origin',
  'net_dm.pc',
  'net_dm.symbol',
  'net_dm.port.netdev_index',
  'net_dm.orig_len',
  'net_dm.proto',
  'eth.type',
  'ip.src',
  'ip.dst',
  'ip.len',
  'udp.dstport',
  'udp.length',
  'data.data',
];

function tsharkRows(path: string): string[][] {
  return tsharkFields(path, TSHARK_FIELDS).map((row) => TSHARK_FIELDS.map((f) => row[f] ?? ''));
}

test('dwdump in qemu: captures, Debian dwdump side by side, -q/-s, signals, EPIPE, passive, accounting', async (t) => {
  // The session (test/dwdump/guest/session.sh) and its options are in test/qemu/suite.ts, which may share its boot.
  const why = await sessionUnavailable('dwdump');
  if (why !== null) {
    t.skip(why);
    return;
  }
  const r: GuestResult = await sessionResult('dwdump');
  const { work, sec } = keepTranscript(t, r, 'dwdump-qemu');
  assert.equal(r.exitCode, 0, r.stderr);
  const pcapBytes = (name: string): Buffer => {
    const b = extractBase64(r.stdout, name.toUpperCase());
    writeFileSync(join(work, `${name}.pcap`), b);
    return b;
  };
  const ours = decodePcap(pcapBytes('ours'));
  const theirs = decodePcap(pcapBytes('theirs'));

  await t.test(
    `ours: ${N} datagrams → ${N + 1} records, GETFAMILY first, then NO_SOCKET packet alerts (drop-time order)`,
    () => {
      assert.equal(ours.trailing, 0, 'no partial record after SIGINT');
      assert.equal(ours.records.length, N + 1);
      const family = decodeNlMsgs(decodeSll(ours.records[0]!.data).payload);
      assert.equal(family.length, 1);
      const f = decodeFamily(family[0]!);
      assert.equal(f.name, 'NET_DM');
      const msgs = alerts(ours);
      for (const m of msgs) {
        assert.equal(m.header.type, f.id, 'alerts carry the family id the first record maps');
        assert.equal(netdmCommand(m), NET_DM_CMD_PACKET_ALERT);
        const p = decodePacketAlert(m);
        assert.equal(p.origin, 'software');
        assert.equal(p.reason, 'NO_SOCKET');
        assert.equal(p.protocol, 0x0800);
        assert.equal(udpDstPort(p), 9);
      }
      assert.deepEqual(byDropTime(msgs).map(udpPayload), sentPayloads(N), 'every datagram once, in drop-time order');
      const line = summary(sec('ours'));
      assert.deepEqual(line, { written: N, lost: 0, tail: 0 });
      assert.ok(sec('ours').includes('rc=0'), sec('ours').join(' | '));
    },
  );

  await t.test(
    "record times: each alert's is the kernel's drop time (TIMESTAMP), one per drop; Debian's is when it read it",
    () => {
      const key = (ts: Timestamp) => `${ts.sec}.${ts.usec}`;
      for (const name of ['ours', 'passive', 'burst', 'tail', 'sock', 'after']) {
        const file = decodePcap(pcapBytes(name));
        const times = alertTimes(file);
        assert.ok(times.length > 0, name);
        times.forEach(({ record, dropped }, i) => assert.deepEqual(record, dropped, `${name} record ${i + 2}`));
        // Drops the kernel timed apart are records timed apart, however the batches they came in were cut.
        assert.equal(new Set(times.map((x) => key(x.record))).size, new Set(times.map((x) => key(x.dropped))).size);
        // The family record is written before the kernel starts: its time is when it was written, before every drop.
        const first = nsOfPcapTime(file.records[0]!.ts);
        assert.ok(
          times.every((x) => nsOfPcapTime(x.record) > first),
          `${name}: family record after a drop`,
        );
      }
      const ourTimes = alertTimes(ours).map((x) => key(x.record));
      assert.equal(new Set(ourTimes).size, N, 'one time per datagram sent one by one');
      const burst = decodePcap(pcapBytes('burst'));
      assert.equal(burst.records.length, N + 1, 'the whole burst');
      assert.deepEqual(summary(sec('burst')), { written: N, lost: 0, tail: 0 });
      const burstTimes = new Set(alertTimes(burst).map((x) => key(x.record)));
      t.diagnostic(`burst of ${N}: ${burstTimes.size} distinct record times (the kernel's drop times)`);
      // Debian's dwdump stamps each record with gettimeofday() as it writes it: after the drop.
      const theirTimes = alertTimes(theirs);
      for (const x of theirTimes) assert.ok(nsOfPcapTime(x.record) >= nsOfPcapTime(x.dropped));
      const late = theirTimes.map((x) => Number(nsOfPcapTime(x.record) - nsOfPcapTime(x.dropped)) / 1e6);
      t.diagnostic(
        `Debian dwdump's record times: ${new Set(theirTimes.map((x) => key(x.record))).size} distinct for ` +
          `${theirTimes.length} alerts, ${Math.min(...late).toFixed(1)}-${Math.max(...late).toFixed(1)} ms after the drop`,
      );
    },
  );

  await t.test('file mode 0600 under umask 022', () => {
    assert.match(sec('ours-mode')[0]!, /^600 \d+$/);
  });

  await t.test(
    "same structure as Debian dwdump's pcap: header bytes, cooked headers, alert bytes but timestamps",
    () => {
      assert.equal(theirs.trailing, 0);
      // Theirs: N datagrams, then 2 more after our passive run ended (it must not stop the kernel).
      assert.equal(theirs.records.length, 1 + N + 2);
      const header = (b: Buffer) => b.subarray(0, 24).toString('hex');
      assert.equal(header(pcapBytes('ours')), header(pcapBytes('theirs')));
      assert.equal(ours.header.linktype, LINKTYPE_NETLINK);
      assert.equal(ours.littleEndian, theirs.littleEndian);
      for (const rec of [...ours.records, ...theirs.records])
        assert.equal(Buffer.from(rec.data.subarray(0, 16)).toString('hex'), Buffer.from(NETLINK_SLL).toString('hex'));
      // Theirs starts with one recv() of the whole GETFAMILY dump; ours with the NET_DM reply alone. Both map the id.
      const theirFamilies = decodeNlMsgs(decodeSll(theirs.records[0]!.data).payload).map(decodeFamily);
      const ourFamily = decodeFamily(decodeNlMsgs(decodeSll(ours.records[0]!.data).payload)[0]!);
      assert.equal(theirFamilies.find((f) => f.name === 'NET_DM')?.id, ourFamily.id);
      // Paired by payload (the same N payloads went to both), since delivery order is the kernel's.
      const pairs = (file: PcapFile) =>
        new Map(
          alerts(file).map((m, k) => {
            const p = decodePacketAlert(m);
            return [udpPayload(p), { header: m.header, origLen: file.records[k + 1]!.origLen, p }] as const;
          }),
        );
      const a = pairs(ours);
      const b = pairs(theirs);
      const strip = (p: PacketDrop) => ({ ...p, timestampNs: 0n, payload: udpPayload(p), dst: udpDstPort(p) });
      for (const payload of sentPayloads(N)) {
        const x = a.get(payload);
        const y = b.get(payload);
        assert.ok(x && y, `${payload} in both files`);
        assert.deepEqual(x.header, y.header, `${payload}: netlink header`);
        assert.equal(x.origLen, y.origLen, `${payload}: record length`);
        assert.deepEqual(strip(x.p), strip(y.p), `${payload}: decoded alert`);
      }
      assert.deepEqual(byDropTime(alerts(theirs)).slice(N).map(udpPayload), ['late-1', 'late-2']);
    },
  );

  await t.test('passive (-p): listens to the other session, changes nothing, SIGTERM exits 0', () => {
    const passive = decodePcap(pcapBytes('passive'));
    assert.equal(passive.records.length, N + 1);
    assert.deepEqual(byDropTime(alerts(passive)).map(udpPayload), sentPayloads(N));
    assert.equal(summary(sec('passive')).written, N);
    assert.ok(sec('passive').includes('rc=0'));
  });

  await t.test("-q and -s print exactly Debian dwdump's lines (fresh module and after the captures)", () => {
    for (const [a, b] of [
      ['query-fresh-ours', 'query-fresh-theirs'],
      ['stats-fresh-ours', 'stats-fresh-theirs'],
      ['query-ours', 'query-theirs'],
      ['stats-ours', 'stats-theirs'],
    ] as const)
      assert.deepEqual(sec(a), sec(b), `${a} vs ${b}`);
    assert.deepEqual(sec('query-ours'), [
      'Alert mode: packet',
      'Truncation length: 65535',
      'Queue length: 1000',
      'rc=0',
    ]);
    assert.match(
      sec('stats-ours').join('\n'),
      /^Software statistics:\nTail dropped: \d+\nHardware statistics:\nTail dropped: \d+\nrc=0$/,
    );
  });

  await t.test('EPIPE: the reader leaves, dwdump exits 0 quietly and still stops the kernel', () => {
    const lines = sec('pipe');
    assert.ok(lines.includes('rc=0'), lines.join(' | '));
    assert.ok(!lines.some((l) => /EPIPE|broken pipe|error/i.test(l)), lines.join(' | '));
    // Stopped: the next session's START succeeded (ours above ran and wrote N alerts).
    assert.ok(sec('ours').some((l) => l.startsWith('dwdump: capturing')));
  });

  await t.test('the reader leaves while no drops come: dwdump notices within a second, exits 0 quietly', () => {
    const lines = sec('idle');
    assert.ok(lines.includes('rc=0'), lines.join(' | '));
    assert.ok(!lines.some((l) => /EPIPE|broken pipe|error/i.test(l)), lines.join(' | '));
    const m = /^ended=([\d.]+) left=([\d.]+)$/m.exec(lines.join('\n'));
    assert.ok(m, lines.join(' | '));
    const after = Number(m[1]) - Number(m[2]);
    t.diagnostic(`idle reader: dwdump ended ${Math.round(after * 1000)} ms after head left`);
    assert.ok(after < 1.5, `${after} s`);
  });

  await t.test('SIGTERM the moment dwdump runs: exit 0, and its file is a valid pcap (header, family record)', () => {
    const lines = sec('early');
    assert.ok(lines.includes('rc=0'), `killed by the signal? ${lines.join(' | ')}`);
    const early = decodePcap(pcapBytes('early'));
    assert.equal(early.header.linktype, LINKTYPE_NETLINK);
    assert.equal(early.trailing, 0);
    assert.ok(early.records.length <= 1, `${early.records.length} records`);
  });

  await t.test('exact accounting: written + lost on our socket + kernel tail drops = datagrams sent', () => {
    for (const name of ['tail', 'sock']) {
      const lines = sec(name);
      const sent = Number(lines.find((l) => l.startsWith('sent='))!.slice(5));
      const c = summary(lines);
      t.diagnostic(`${name}: sent ${sent}, written ${c.written}, lost ${c.lost}, tail-dropped ${c.tail}`);
      assert.equal(c.written + c.lost + c.tail, sent, `${name}: ${lines.join(' | ')}`);
      assert.equal(decodePcap(pcapBytes(name)).records.length, c.written + 1);
      assert.ok(lines.includes('rc=0'));
    }
    assert.ok(summary(sec('tail')).tail > 0, 'queue length 1 tail-drops some of a burst');
    assert.ok(summary(sec('sock')).lost > 0, 'a minimal receive buffer loses some of a burst');
  });

  await t.test('refusals are one line, exit 1: a symlink (target untouched), CONFIG while monitoring (EBUSY)', () => {
    const link = sec('symlink');
    assert.deepEqual(link, ['dwdump: refusing to write /tmp/link.pcap: it is a symbolic link', 'rc=1']);
    assert.deepEqual(sec('victim'), ['keep']);
    const busy = sec('busy');
    assert.equal(busy.length, 2, busy.join(' | '));
    assert.match(busy[0]!, /^dwdump: Failed to configure drop monitor kernel module: Device or resource busy/);
    assert.equal(busy[1], 'rc=1');
    assert.deepEqual(sec('exit-ours'), ['rc=0']);
    const after = sec('after');
    assert.deepEqual(summary(after), { written: 3, lost: 0, tail: 0 });
    assert.equal(decodePcap(pcapBytes('after')).records.length, 4);
  });

  await t.test("tshark: our capture decodes as net_dm exactly as Debian dwdump's, field by field", (tt) => {
    if (!tsharkAvailable()) {
      tt.skip('tshark is not installed (Debian package tshark)');
      return;
    }
    // Rows paired by the UDP payload (data.data), as above: delivery order is the kernel's.
    const payloadCol = TSHARK_FIELDS.indexOf('data.data');
    const payloadOf = (row: string[]) => Buffer.from(row[payloadCol] ?? '', 'hex').toString();
    const order = (rows: string[][]) =>
      rows
        .filter((row) => payloadOf(row).startsWith('dw-'))
        .sort((x, y) => Number(payloadOf(x).slice(3)) - Number(payloadOf(y).slice(3)));
    const a = order(tsharkRows(join(work, 'ours.pcap')));
    const b = order(tsharkRows(join(work, 'theirs.pcap')));
    assert.equal(a.length, N);
    assert.equal(b.length, N);
    for (let i = 0; i < N; i++) {
      const row: Record<string, [string, string]> = {};
      TSHARK_FIELDS.forEach((f, j) => (row[f] = [a[i]![j] ?? '', b[i]![j] ?? '']));
      for (const [f, [x, y]] of Object.entries(row)) assert.equal(x, y, `dw-${i + 1}: field ${f}`);
      assert.equal(row['net_dm.symbol']![0].startsWith('__udp4_lib_rcv+'), true);
      assert.equal(Buffer.from(row['data.data']![0], 'hex').toString(), `dw-${i + 1}`);
      assert.equal(row['frame.protocols']![0], 'netlink:genl:net_dm:eth:ethertype:ip:udp:data');
    }
    // Wireshark's time column: each of our alerts at its net_dm.timestamp, to the microsecond (TZ pinned for parsing).
    const r3 = spawnSync(
      'tshark',
      [
        '-r',
        join(work, 'ours.pcap'),
        '-Y',
        'net_dm.cmd == 5',
        '-T',
        'fields',
        '-E',
        'separator=/t',
        '-e',
        'frame.time_epoch',
        '-e',
        'net_dm.timestamp',
      ],
      { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } },
    );
    assert.equal(r3.status, 0, r3.stderr);
    const times = r3.stdout.split('\n').filter((l) => l !== '');
    assert.equal(times.length, N);
    for (const line of times) {
      const [frame, dropped] = line.split('\t') as [string, string];
      const m = /^(\w{3} +\d+, \d{4} \d\d:\d\d:\d\d)\.(\d{9}) UTC$/.exec(dropped);
      assert.ok(m, dropped);
      const usec = m[2]!.slice(0, 6);
      assert.equal(frame, `${Date.parse(`${m[1]} UTC`) / 1000}.${usec}000`, line);
    }
    // Every file we wrote (cut by SIGINT or SIGTERM) opens in tshark without complaint.
    for (const name of ['ours', 'passive', 'burst', 'tail', 'sock', 'after']) {
      const r2 = spawnSync('tshark', ['-r', join(work, `${name}.pcap`), '-q'], { encoding: 'utf8' });
      assert.equal(r2.status, 0, `${name}: ${r2.stderr}`);
    }
  });
});
