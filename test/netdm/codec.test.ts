// NET_DM codec on bytes captured from the qemu guest's drop_monitor (test/fixtures/netdm), never on invented bytes:
// decoders against the manifest and against what Debian's dropwatch printed for the same session; encoders against
// the requests dropwatch itself sent (nlmon capture); mutations of the real fixtures only ever decode or E_DECODE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DropwatchError } from '../../src/errors/index.js';
import {
  attrBinary,
  attrMap,
  attrString,
  attrU16,
  attrU32,
  attrU64,
  decodeAttrs,
  decodeGenl,
  decodeNlError,
  decodeNlMsgs,
  NLM_F_REQUEST,
  NLMSG_ERROR,
  type NlAttr,
  type NlMessage,
} from '../../src/netlink/codec.js';
import { decodeFamily, encodeFamily } from '../../src/netlink/nlctrl.js';
import type { PacketDrop } from '../../src/backend/types.js';
import {
  decodeConfigNew,
  decodeEvent,
  decodePacketAlert,
  decodeStatsNew,
  decodeSummaryAlert,
  encodeConfig,
  encodeConfigGet,
  encodePacketAlert,
  encodeStart,
  encodeStatsGet,
  encodeStop,
  NET_DM_CMD_ALERT,
  NET_DM_CMD_CONFIG,
  NET_DM_CMD_CONFIG_GET,
  NET_DM_CMD_CONFIG_NEW,
  NET_DM_CMD_PACKET_ALERT,
  NET_DM_CMD_START,
  NET_DM_CMD_STATS_GET,
  NET_DM_CMD_STATS_NEW,
  NET_DM_CMD_STOP,
  NET_DM_FAMILY_NAME,
  NET_DM_GROUP_NAME,
  netdmCommand,
  netdmFamily,
} from '../../src/netdm/codec.js';
import { formatPacket, formatShow, formatStats, formatSummaryLine } from '../../src/output/format.js';
import { parseKallsyms } from '../../src/symbols/kallsyms.js';
import { fixtureBytes, fixtureMessage, fixtureText, manifest, readNetlinkPcap } from './fixtures.js';

// dropwatch printed timestamps with asctime(localtime()) in a guest without a TZ, i.e. UTC.
process.env.TZ = 'UTC';

const FAMILY_ID = 32;
const UDP_PC = 0xffffffff8188c602n;
const binFixtures = manifest.files.filter((f) => f.endsWith('.bin'));

/** The lines dropwatch printed between two markers (exclusive), e.g. one packet block. */
function lines(name: string): string[] {
  return fixtureText(name).split('\n');
}

test('manifest: every .bin decodes to the recorded header, genl command and errno/extack', () => {
  assert.ok(binFixtures.length >= 25, `only ${binFixtures.length} .bin fixtures`);
  for (const m of manifest.messages) {
    const msg = fixtureMessage(m.name);
    assert.deepEqual(
      { len: msg.header.len, type: msg.header.type, flags: msg.header.flags, seq: msg.header.seq, pid: msg.header.pid },
      { len: m.len, type: m.type, flags: m.flags, seq: m.seq, pid: m.pid },
      m.name,
    );
    if (m.type === NLMSG_ERROR) {
      const e = decodeNlError(msg);
      assert.equal(e.errno, Math.abs(m.error ?? 0), m.name);
      assert.equal(e.extack?.msg, m.extack?.msg, m.name);
    } else {
      assert.equal(netdmCommand(msg), m.genl_cmd, m.name);
      assert.equal(decodeGenl(msg).version, m.genl_version, m.name);
    }
  }
  // Every .bin has a manifest entry.
  assert.deepEqual(binFixtures.sort(), manifest.messages.map((m) => m.name).sort());
});

test('GETFAMILY reply: NET_DM, id 32, group events = 1 (as the capture recorded)', () => {
  const f = decodeFamily(fixtureMessage('ctrl-getfamily-reply.bin'));
  assert.equal(f.name, NET_DM_FAMILY_NAME);
  assert.equal(f.id, FAMILY_ID);
  assert.equal(f.version, 2);
  assert.equal(f.mcastGroups.get(NET_DM_GROUP_NAME), 1);
  assert.ok(manifest.info.includes(`family_id=${f.id} group_id=${f.mcastGroups.get(NET_DM_GROUP_NAME)}`));
});

test('summary ALERT: one point, 100 drops at __udp4_lib_rcv+9a2, the line dropwatch printed', () => {
  const msg = fixtureMessage('alert-summary-0.bin');
  const entries = decodeSummaryAlert(msg);
  assert.deepEqual(entries, [{ origin: 'software', pc: UDP_PC, reason: null, count: 100 }]);
  assert.deepEqual(decodeEvent(msg), { kind: 'summary', entries });
  const kas = parseKallsyms(fixtureText('kallsyms-excerpt.txt'));
  const line = formatSummaryLine(entries[0]!, kas.resolve(entries[0]!.pc));
  assert.ok(lines('dropwatch-summary.txt').includes(line), line);
  assert.equal(line, '100 drops at __udp4_lib_rcv+9a2 (0xffffffff8188c602) [software]');
});

test("PACKET_ALERT ×3 (our capture): every field, and dropwatch's block shape but for the time", () => {
  const printed = lines('dropwatch-packet.txt');
  const firstBlock = printed.findIndex((l) => l.startsWith('drop at: '));
  const payloads = ['dropwatch-1', 'dropwatch-22', 'dropwatch-333'];
  for (let i = 0; i < 3; i++) {
    const msg = fixtureMessage(`packet-alert-${i}.bin`);
    const p = decodePacketAlert(msg);
    const len = 42 + payloads[i]!.length; // 14 (loopback MAC) + 20 (IPv4) + 8 (UDP) + data
    assert.equal(p.origin, 'software');
    assert.equal(p.pc, UDP_PC);
    assert.equal(p.symbol, '__udp4_lib_rcv+0x9a2/0xc30');
    assert.equal(p.reason, 'NO_SOCKET');
    assert.deepEqual(p.inPort, { ifindex: 1 });
    assert.equal(p.protocol, 0x800);
    assert.equal(p.origLen, len);
    assert.equal(p.payload?.length, len);
    assert.equal(Buffer.from(p.payload.subarray(len - payloads[i]!.length)).toString(), payloads[i]);
    assert.equal(p.cookie, undefined);
    assert.equal(p.trapName, undefined);
    assert.equal(typeof p.timestampNs, 'bigint');
    assert.deepEqual(decodeEvent(msg), { kind: 'packet', packet: p });
    // These three were captured by our own socket, not in dropwatch's session: only the time differs.
    const block = formatPacket(p).map((l) => (l.startsWith('timestamp: ') ? 'timestamp: *' : l));
    const theirs = printed.slice(firstBlock + i * 9, firstBlock + (i + 1) * 9);
    assert.deepEqual(
      block,
      theirs.map((l) => (l.startsWith('timestamp: ') ? 'timestamp: *' : l)),
      `block ${i}`,
    );
  }
});

test('PACKET_ALERTs dropwatch received (nlmon capture of its session) format to exactly the blocks it printed', () => {
  const printed = lines('dropwatch-packet.txt');
  const firstBlock = printed.findIndex((l) => l.startsWith('drop at: '));
  const received = readNetlinkPcap('nlmon-dropwatch.pcap')
    .flatMap((r) => decodeNlMsgs(r.netlink))
    .filter((m) => m.header.type === FAMILY_ID && !(m.header.flags & NLM_F_REQUEST))
    .filter((m) => netdmCommand(m) === NET_DM_CMD_PACKET_ALERT);
  assert.equal(received.length, 3);
  const ours = received.flatMap((m) => formatPacket(decodePacketAlert(m)));
  assert.deepEqual(ours, printed.slice(firstBlock, firstBlock + 27));
});

test('PACKET_ALERT with trunc_len 20: 20 payload bytes, original length 70', () => {
  const p = decodePacketAlert(fixtureMessage('packet-alert-trunc20-0.bin'));
  assert.equal(p.payload?.length, 20);
  assert.equal(p.origLen, 70);
  assert.equal(p.reason, 'NO_SOCKET');
  assert.equal(p.protocol, 0x800);
});

test('CONFIG_NEW: defaults, packet mode, and the `show` lines dropwatch printed', () => {
  const def = decodeConfigNew(fixtureMessage('config-new-default.bin'));
  assert.deepEqual(def, { alertMode: 'summary', truncLen: 0, queueLen: 1000 });
  assert.deepEqual(decodeConfigNew(fixtureMessage('config-new-with-ack.bin')), def);
  const packet = decodeConfigNew(fixtureMessage('config-new-packet.bin'));
  assert.deepEqual(packet, { alertMode: 'packet', truncLen: 0, queueLen: 1000 });
  const showIn = (name: string): string[] => {
    const l = lines(name);
    const i = l.indexOf('Getting existing configuration');
    return l.slice(i + 1, i + 4);
  };
  assert.deepEqual(formatShow(def), showIn('dropwatch-show-summary.txt'));
  assert.deepEqual(formatShow(packet), showIn('dropwatch-show-packet.txt'));
});

test('STATS_NEW: software and hardware tail drops, and the `stats` lines dropwatch printed', () => {
  for (const name of ['stats-new-initial.bin', 'stats-new-summary-running.bin']) {
    const s = decodeStatsNew(fixtureMessage(name));
    assert.deepEqual(s, { software: { tailDropped: 0n }, hardware: { tailDropped: 0n } }, name);
  }
  // The capture's note says how many datagrams were sent and how many alerts came through: the rest were tail-dropped.
  const note = manifest.messages.find((m) => m.name === 'stats-new-tail-drops.bin')!.note;
  const sent = /after (\d+) datagrams/.exec(note);
  const delivered = /(\d+) PACKET_ALERTs were delivered/.exec(note);
  assert.ok(sent && delivered, note);
  const tail = decodeStatsNew(fixtureMessage('stats-new-tail-drops.bin'));
  assert.deepEqual(tail, {
    software: { tailDropped: BigInt(Number(sent[1]) - Number(delivered[1])) },
    hardware: { tailDropped: 0n },
  });
  assert.ok(tail.software.tailDropped > 0n);
  // The STATS_NEW dropwatch itself received (nlmon capture of its session) against what it printed.
  const received = readNetlinkPcap('nlmon-dropwatch.pcap')
    .flatMap((r) => decodeNlMsgs(r.netlink))
    .filter((m) => m.header.type === FAMILY_ID && netdmCommand(m) === NET_DM_CMD_STATS_NEW);
  assert.equal(received.length, 1);
  const s = decodeStatsNew(received[0]!);
  const l = lines('dropwatch-stats.txt');
  const i = l.indexOf('Getting statistics');
  assert.deepEqual(formatStats({ ...s, lost: [] }), l.slice(i + 1, i + 5));
});

test('decoders refuse the wrong command with E_DECODE; decodeEvent ignores non-alerts', () => {
  const config = fixtureMessage('config-new-default.bin');
  const alert = fixtureMessage('alert-summary-0.bin');
  const isDecode = (e: unknown): boolean => e instanceof DropwatchError && e.code === 'E_DECODE';
  assert.throws(() => decodeSummaryAlert(config), isDecode);
  assert.throws(() => decodePacketAlert(alert), isDecode);
  assert.throws(() => decodeConfigNew(alert), isDecode);
  assert.throws(() => decodeStatsNew(config), isDecode);
  assert.equal(decodeEvent(config), null);
  assert.equal(decodeEvent(fixtureMessage('stats-new-initial.bin')), null);
});

test('dwdump pcap: GETFAMILY reply first, then three PACKET_ALERTs that decode', () => {
  const recs = readNetlinkPcap('dwdump-packet.pcap');
  // dwdump records the whole GETFAMILY dump it read: NET_DM is one of the families in it.
  const families = decodeNlMsgs(recs[0]!.netlink)
    .filter((m) => m.header.type === 0x10)
    .map(decodeFamily);
  assert.equal(families.find((f) => f.name === NET_DM_FAMILY_NAME)?.id, FAMILY_ID);
  const alerts = recs.slice(1).map((r) => decodePacketAlert(decodeNlMsgs(r.netlink)[0]!));
  assert.equal(alerts.length, 3);
  for (const [i, p] of alerts.entries()) {
    const data = `dwdump-${['1', '22', '333'][i]}`;
    assert.equal(p.pc, UDP_PC);
    assert.equal(Buffer.from(p.payload!.subarray(p.payload!.length - data.length)).toString(), data);
  }
});

test('encoders produce the bodies dropwatch 1.5.4 sent (nlmon capture), and what it received decodes', () => {
  const sent = new Map<number, Set<string>>();
  let alerts = 0;
  for (const rec of readNetlinkPcap('nlmon-dropwatch.pcap')) {
    for (const m of decodeNlMsgs(rec.netlink)) {
      if (m.header.type !== FAMILY_ID) continue;
      const hex = Buffer.from(m.payload).toString('hex');
      if (m.header.flags & NLM_F_REQUEST) {
        const cmd = m.payload[0]!;
        if (!sent.has(cmd)) sent.set(cmd, new Set());
        sent.get(cmd)!.add(hex);
      } else if (decodeEvent(m)) {
        alerts++;
      }
    }
  }
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  assert.deepEqual([...sent.get(NET_DM_CMD_START)!], [hex(encodeStart({ sw: false, hw: false }))]);
  assert.deepEqual([...sent.get(NET_DM_CMD_STOP)!], [hex(encodeStop({}))]);
  assert.deepEqual([...sent.get(NET_DM_CMD_CONFIG_GET)!], [hex(encodeConfigGet())]);
  assert.deepEqual([...sent.get(NET_DM_CMD_STATS_GET)!], [hex(encodeStatsGet())]);
  assert.deepEqual(
    [...sent.get(NET_DM_CMD_CONFIG)!].sort(),
    [hex(encodeConfig({ alertMode: 'packet' })), hex(encodeConfig({ alertMode: 'summary' }))].sort(),
  );
  assert.equal(alerts, 4, 'one summary ALERT and three PACKET_ALERTs');
});

test('encoders: trunc/queue are u32 attributes, START/STOP carry the SW/HW flags', () => {
  // Attribute layout per include/uapi/linux/net_dropmon.h (TRUNC_LEN 9, QUEUE_LEN 11, SW_DROPS 20, HW_DROPS 21).
  assert.equal(
    hex(encodeConfig({ alertMode: 'packet', truncLen: 20, queueLen: 2 })),
    '02010000' + '0500010001000000' + '0800090014000000' + '08000b0002000000',
  );
  assert.equal(hex(encodeStart({ sw: true, hw: true })), '03010000' + '04001400' + '04001500');
  assert.equal(hex(encodeStop({ sw: false, hw: true })), '04010000' + '04001500');
  assert.throws(
    () => encodeConfig({ truncLen: -1 }),
    (e: unknown) => (e as DropwatchError).code === 'E_BAD_INPUT',
  );
  // The CONFIG_NEW reply layout is the same attribute set: what we encode decodes back through the real reply shape.
  const reply = fixtureMessage('config-new-default.bin');
  assert.equal(
    hex(reply.payload.subarray(4)),
    hex(encodeConfig({ alertMode: 'summary', truncLen: 0, queueLen: 1000 }).subarray(4)),
  );
  assert.equal(decodeGenl(reply).cmd, NET_DM_CMD_CONFIG_NEW);
  assert.ok(NET_DM_CMD_STATS_NEW && NET_DM_CMD_ALERT && NET_DM_CMD_PACKET_ALERT);
});

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

// ---------- mutations of the real fixtures ----------

const DECODERS = [decodeEvent, decodeSummaryAlert, decodePacketAlert, decodeConfigNew, decodeStatsNew];

function decodeAll(bytes: Uint8Array): void {
  let msgs;
  try {
    msgs = decodeNlMsgs(bytes);
  } catch (e) {
    assert.ok(e instanceof DropwatchError && e.code === 'E_DECODE', String(e));
    return;
  }
  for (const m of msgs) {
    for (const d of DECODERS) {
      try {
        d(m);
      } catch (e) {
        assert.ok(e instanceof DropwatchError && e.code === 'E_DECODE', `${d.name}: ${String(e)}`);
      }
    }
  }
}

const netdmFixtures = binFixtures.filter(
  (f) => !f.startsWith('ack-') && !f.startsWith('err-') && !f.startsWith('ctrl-'),
);

test('fast-check: byte edits of real NET_DM messages decode or throw E_DECODE, nothing else', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...netdmFixtures),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      (name, edits) => {
        const b = fixtureBytes(name);
        for (const [pos, value] of edits) b[pos % b.length] = value;
        decodeAll(b);
      },
    ),
    { numRuns: 3000 },
  );
});

test('fast-check: truncations, extensions and length-field edits of real messages decode or E_DECODE', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...netdmFixtures),
      fc.nat(),
      fc.uint8Array({ maxLength: 64 }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.nat(),
      (name, cut, tail, newLen, at) => {
        const orig = fixtureBytes(name);
        const b = new Uint8Array(Buffer.concat([orig.subarray(0, cut % (orig.length + 1)), tail]));
        if (b.length >= 2) {
          // Overwrite a 16-bit field (nla_len/nla_type, counts) somewhere at a 4-byte boundary, as length bugs would.
          const off = (at % Math.floor(b.length / 2)) * 2;
          b[off] = newLen & 0xff;
          if (off + 1 < b.length) b[off + 1] = newLen >> 8;
        }
        decodeAll(b);
      },
    ),
    { numRuns: 3000 },
  );
});

test('fast-check: summary ALERT entry counts beyond the attribute never over-read', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (entries) => {
      const b = fixtureBytes('alert-summary-0.bin');
      new DataView(b.buffer).setUint32(24, entries, true); // the u32 entries after nlmsghdr+genl+nla header
      const msg = decodeNlMsgs(b)[0]!;
      if (entries <= 1) assert.equal(decodeSummaryAlert(msg).length, entries);
      else
        assert.throws(
          () => decodeSummaryAlert(msg),
          (e: unknown) => (e as DropwatchError).code === 'E_DECODE',
        );
    }),
    { numRuns: 500 },
  );
});

// The PACKET_ALERT decoder as it was written over the generic attribute readers, before the single-pass one: the
// reference the fast decoder must match, value for value and error for error.
function referencePacketAlert(msg: NlMessage): PacketDrop {
  const g = decodeGenl(msg);
  if (g.cmd !== NET_DM_CMD_PACKET_ALERT)
    throw new DropwatchError('E_DECODE', `NET_DM: expected PACKET_ALERT (command 5), got command ${g.cmd}`);
  const m = attrMap(g.attrs);
  const o = m.get(14);
  const origin = o === undefined ? 0 : attrU16(o);
  if (origin > 1) throw new DropwatchError('E_DECODE', `NET_DM: unknown origin ${origin}`);
  const p: PacketDrop = { origin: origin === 1 ? 'hardware' : 'software' };
  let a: NlAttr | undefined;
  if ((a = m.get(2))) p.pc = attrU64(a);
  if ((a = m.get(3))) p.symbol = attrString(a);
  if ((a = m.get(15))) p.trapGroup = attrString(a);
  if ((a = m.get(16))) p.trapName = attrString(a);
  if ((a = m.get(4))) {
    const port = attrMap(a.data);
    const inPort: { ifindex?: number; name?: string } = {};
    const ifindex = port.get(0);
    const name = port.get(1);
    if (ifindex) inPort.ifindex = attrU32(ifindex);
    if (name) inPort.name = attrString(name);
    p.inPort = inPort;
  }
  if ((a = m.get(22))) p.cookie = attrBinary(a).slice();
  if ((a = m.get(5))) p.timestampNs = attrU64(a);
  if ((a = m.get(6))) p.protocol = attrU16(a);
  if ((a = m.get(7))) p.payload = attrBinary(a).slice();
  if ((a = m.get(10))) p.origLen = attrU32(a);
  if ((a = m.get(23))) p.reason = attrString(a);
  return p;
}

function outcome(decode: (m: NlMessage) => PacketDrop, m: NlMessage): PacketDrop | string {
  try {
    return decode(m);
  } catch (e) {
    assert.ok(e instanceof DropwatchError && e.code === 'E_DECODE', String(e));
    return e.message;
  }
}

test('fast-check: the PACKET_ALERT decoder matches the attribute-map reference on edited real alerts', () => {
  const alerts = ['packet-alert-0.bin', 'packet-alert-1.bin', 'packet-alert-2.bin', 'packet-alert-trunc20-0.bin'];
  const check = (b: Uint8Array): void => {
    let msgs;
    try {
      msgs = decodeNlMsgs(b);
    } catch {
      return;
    }
    for (const m of msgs) assert.deepEqual(outcome(decodePacketAlert, m), outcome(referencePacketAlert, m));
  };
  for (const name of alerts) check(fixtureBytes(name));
  fc.assert(
    fc.property(
      fc.constantFrom(...alerts),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.nat(),
      (name, edits, cut) => {
        const b = fixtureBytes(name);
        // Past the nlmsghdr, so most edits reach the attributes; the header's own length is cut to match.
        for (const [pos, value] of edits) b[16 + (pos % (b.length - 16))] = value;
        const len = 20 + (cut % (b.length - 19));
        new DataView(b.buffer).setUint32(0, len, true);
        check(b.subarray(0, len));
      },
    ),
    { numRuns: 5000 },
  );
});

test("encodePacketAlert: a decoded PACKET_ALERT encodes back to the kernel's very bytes (6.1's attribute order)", () => {
  for (const name of ['packet-alert-0.bin', 'packet-alert-1.bin', 'packet-alert-2.bin', 'packet-alert-trunc20-0.bin']) {
    const msg = fixtureMessage(name);
    assert.deepEqual(encodePacketAlert(decodePacketAlert(msg), msg.header.type), msg.raw, name);
  }
});

test('encodePacketAlert: no payload, no PROTO; no ifindex, an empty IN_PORT; hardware fields in their place', () => {
  const sw = decodePacketAlert(decodeNlMsgs(encodePacketAlert({ origin: 'software', pc: 1n, origLen: 0 }, 40))[0]!);
  assert.deepEqual(sw, { origin: 'software', pc: 1n, inPort: {}, origLen: 0 });
  const hw: PacketDrop = {
    origin: 'hardware',
    trapGroup: 'l3_drops',
    trapName: 'blackhole_route',
    inPort: { ifindex: 3, name: 'eni0' },
    cookie: new Uint8Array([1, 2, 3]),
    timestampNs: 5n,
    origLen: 4,
    protocol: 0x800,
    payload: new Uint8Array([9, 9, 9, 9]),
  };
  const bytes = encodePacketAlert(hw, 40);
  const msg = decodeNlMsgs(bytes)[0]!;
  assert.equal(msg.header.type, 40);
  assert.deepEqual(decodePacketAlert(msg), hw);
  // The kernel's order for a hardware drop (net_dm_hw_packet_report_fill).
  const order = decodeAttrs(decodeGenl(msg).attrs).map((a) => a.type);
  assert.deepEqual(order, [14, 15, 16, 4, 22, 5, 10, 6, 7]);
});

test('netdmFamily: the NEWFAMILY drop_monitor registers, byte for byte but the id and the reply header', () => {
  const msg = fixtureMessage('ctrl-getfamily-reply.bin');
  const captured = decodeFamily(msg);
  const ours = netdmFamily(captured.id);
  assert.deepEqual(
    encodeFamily(ours, { seq: msg.header.seq, pid: msg.header.pid }),
    msg.raw,
    'the family as 6.1 registers it, in the kernel reply',
  );
  const other = decodeFamily(decodeNlMsgs(encodeFamily(netdmFamily(0x3ff)))[0]!);
  assert.equal(other.id, 0x3ff);
  assert.equal(other.name, NET_DM_FAMILY_NAME);
});
