// The pcap writer against the bytes Debian's dwdump (libpcap 1.10) wrote in the qemu guest: global header, record
// headers and the cooked header must be byte-identical; the reader round-trips both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AF_NETLINK,
  ARPHRD_NETLINK,
  decodePcap,
  decodeSll,
  encodeGlobalHeader,
  encodeNetlinkRecord,
  encodeRecord,
  encodeSll,
  LINKTYPE_NETLINK,
  NETLINK_SLL,
  PACKET_OUTGOING,
  PcapFormatError,
  timestampFromMs,
  timestampFromNs,
} from '../../src/pcap/index.js';
import { decodeNlMsgs } from '../../src/netlink/codec.js';
import { decodePacketAlert } from '../../src/netdm/codec.js';
import { NETDM_FIXTURES } from '../netdm/fixtures.js';
import { pcapTimeOfNs } from '../helpers/pcap-time.js';

const fixture = readFileSync(join(NETDM_FIXTURES, 'dwdump-packet.pcap'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
// dwdump's snaplen: its default truncation length (0xffff) plus 2048 bytes for the other attributes.
const DWDUMP_SNAPLEN = 0xffff + 2048;

test('global header: little-endian magic, 2.4, zone 0, sigfigs 0, snaplen, LINKTYPE_NETLINK', () => {
  const h = encodeGlobalHeader({ snaplen: DWDUMP_SNAPLEN, linktype: LINKTYPE_NETLINK }, true);
  assert.equal(hex(h), 'd4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + 'ff070100' + 'fd000000');
  assert.equal(hex(h), hex(fixture.subarray(0, 24)), "identical to dwdump's header");
  const be = encodeGlobalHeader({ snaplen: 100, linktype: LINKTYPE_NETLINK }, false);
  assert.equal(hex(be), 'a1b2c3d4' + '0002' + '0004' + '00000000' + '00000000' + '00000064' + '000000fd');
});

test('cooked header: big-endian pkttype 4, ARPHRD_NETLINK 824, no address, AF_NETLINK 16', () => {
  assert.equal(hex(NETLINK_SLL), '0004' + '0338' + '0000' + '0000000000000000' + '0010');
  const f = decodePcap(fixture);
  assert.equal(f.records.length, 4);
  for (const r of f.records) assert.equal(hex(r.data.subarray(0, 16)), hex(NETLINK_SLL), 'as in every dwdump record');
  const { sll } = decodeSll(f.records[1]!.data);
  assert.deepEqual(
    { ...sll, addr: hex(sll.addr) },
    {
      pkttype: PACKET_OUTGOING,
      hatype: ARPHRD_NETLINK,
      addr: '',
      protocol: AF_NETLINK,
    },
  );
  const withAddr = encodeSll({ pkttype: 0, hatype: 1, addr: Uint8Array.of(1, 2, 3, 4, 5, 6), protocol: 0x0800 });
  assert.equal(hex(withAddr), '0000' + '0001' + '0006' + '0102030405060000' + '0800');
  assert.throws(() => encodeSll({ pkttype: 0, hatype: 1, addr: new Uint8Array(9), protocol: 0 }), RangeError);
});

test("re-encoding every dwdump record from its timestamp and message gives dwdump's file byte for byte", () => {
  const f = decodePcap(fixture);
  assert.equal(f.trailing, 0);
  assert.equal(f.header.snaplen, DWDUMP_SNAPLEN);
  assert.equal(f.header.linktype, LINKTYPE_NETLINK);
  const parts = [encodeGlobalHeader({ snaplen: f.header.snaplen, linktype: LINKTYPE_NETLINK }, true)];
  for (const r of f.records) {
    assert.equal(r.origLen, r.data.length, 'dwdump never cut a record here');
    parts.push(encodeNetlinkRecord(decodeSll(r.data).payload, r.ts, f.header.snaplen, true));
  }
  assert.equal(hex(Buffer.concat(parts)), hex(fixture));
});

test('the records after the first are whole NET_DM PACKET_ALERT messages with dwdump-N payloads', () => {
  const f = decodePcap(fixture);
  const payloads = f.records.slice(1).map((r) => {
    const msgs = decodeNlMsgs(decodeSll(r.data).payload);
    assert.equal(msgs.length, 1);
    const p = decodePacketAlert(msgs[0]!);
    assert.equal(p.reason, 'NO_SOCKET');
    return Buffer.from(p.payload!.subarray(14 + 20 + 8)).toString();
  });
  assert.deepEqual(payloads, ['dwdump-1', 'dwdump-22', 'dwdump-333']);
});

test('records: header fields in the chosen byte order, parts concatenated', () => {
  const r = encodeRecord([Uint8Array.of(1, 2), Uint8Array.of(3)], { sec: 0x01020304, usec: 999_999 }, 100, true);
  assert.equal(hex(r), '04030201' + '3f420f00' + '03000000' + '03000000' + '010203');
  const b = encodeRecord(Uint8Array.of(9), { sec: 1, usec: 2 }, 100, false);
  assert.equal(hex(b), '00000001' + '00000002' + '00000001' + '00000001' + '09');
});

test('a record longer than snaplen is cut there; orig_len keeps the full length', () => {
  const msg = new Uint8Array(100).map((_, i) => i);
  const r = encodeNetlinkRecord(msg, { sec: 1, usec: 0 }, 50, true);
  assert.equal(r.length, 16 + 50);
  const f = decodePcap(Buffer.concat([encodeGlobalHeader({ snaplen: 50, linktype: LINKTYPE_NETLINK }, true), r]));
  assert.equal(f.records[0]!.origLen, 116);
  assert.equal(f.records[0]!.data.length, 50);
  assert.equal(hex(f.records[0]!.data.subarray(16)), hex(msg.subarray(0, 34)));
  // Exactly snaplen: not cut.
  assert.equal(encodeRecord(new Uint8Array(50), { sec: 0, usec: 0 }, 50).length, 66);
});

test('timestamps: milliseconds with fractions to seconds + microseconds', () => {
  assert.deepEqual(timestampFromMs(1_795_678_126_941.832), { sec: 1_795_678_126, usec: 941_832 });
  assert.deepEqual(timestampFromMs(1000), { sec: 1, usec: 0 });
  assert.deepEqual(timestampFromMs(0.0004), { sec: 0, usec: 0 });
  assert.deepEqual(timestampFromMs(999.9996), { sec: 1, usec: 0 });
});

test('kernel times: nanoseconds to seconds + microseconds, the nanoseconds cut off; null past u32 seconds', () => {
  const fromNs = (ns: bigint) => timestampFromNs(Number(ns >> 32n), Number(ns & 0xffff_ffffn));
  // A NET_DM TIMESTAMP from the qemu guest (packet-alert-0.bin).
  assert.deepEqual(fromNs(1_795_678_101_780_804_780n), { sec: 1_795_678_101, usec: 780_804 });
  assert.deepEqual(fromNs(0n), { sec: 0, usec: 0 });
  assert.deepEqual(fromNs(999n), { sec: 0, usec: 0 });
  assert.deepEqual(fromNs(1_000_000_999n), { sec: 1, usec: 0 });
  const last = 0xffff_ffffn * 1_000_000_000n + 999_999_999n;
  assert.deepEqual(fromNs(last), { sec: 0xffff_ffff, usec: 999_999 });
  // What it gives, the record encoder takes.
  assert.equal(encodeRecord(new Uint8Array(1), fromNs(last)!, 10, true).length, 17);
  assert.equal(fromNs(last + 1n), null);
  assert.equal(fromNs(2n ** 64n - 1n), null);
  // Exact Number arithmetic against BigInt's, over the whole u64 range and around the u32-seconds edge.
  fc.assert(
    fc.property(
      fc.oneof(
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.bigInt({ min: last - 10n ** 12n, max: last + 10n ** 12n }),
      ),
      (ns) => assert.deepEqual(fromNs(ns), pcapTimeOfNs(ns)),
    ),
    { numRuns: 20_000 },
  );
});

test('bad values are refused, not wrapped', () => {
  assert.throws(() => encodeRecord(new Uint8Array(1), { sec: -1, usec: 0 }, 10), RangeError);
  assert.throws(() => encodeRecord(new Uint8Array(1), { sec: 0, usec: 1_000_000 }, 10), RangeError);
  assert.throws(() => encodeGlobalHeader({ snaplen: 2 ** 32, linktype: 1 }), RangeError);
  assert.throws(() => encodeSll({ pkttype: 0x10000, hatype: 0, protocol: 0 }), RangeError);
});

test('reader: big-endian files, a cut last record, bad magic, short file', () => {
  const rec = encodeNetlinkRecord(Uint8Array.of(1, 2, 3, 4), { sec: 5, usec: 6 }, 64, false);
  const file = Buffer.concat([encodeGlobalHeader({ snaplen: 64, linktype: LINKTYPE_NETLINK }, false), rec]);
  const f = decodePcap(file);
  assert.equal(f.littleEndian, false);
  assert.deepEqual(f.records[0]!.ts, { sec: 5, usec: 6 });
  assert.equal(hex(decodeSll(f.records[0]!.data).payload), '01020304');
  const cut = decodePcap(file.subarray(0, file.length - 2));
  assert.equal(cut.records.length, 0);
  assert.equal(cut.trailing, rec.length - 2);
  assert.throws(() => decodePcap(Buffer.alloc(24)), PcapFormatError);
  assert.throws(() => decodePcap(Buffer.alloc(10)), PcapFormatError);
});
