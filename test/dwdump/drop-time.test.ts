// The drop time dwdump stamps on a PACKET_ALERT record, read from bytes the qemu guest's kernel sent: it is the
// TIMESTAMP the full NET_DM decoder reads, null for every other message, and no edit of the real bytes makes it throw
// or read past the message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { packetAlertDropTime } from '../../src/dwdump/drop-time.js';
import {
  attrU64,
  decodeAttrs,
  decodeNlMsgHeader,
  decodeNlMsgs,
  GENL_HDRLEN,
  NLA_F_NET_BYTEORDER,
  NLA_HDRLEN,
  NLMSG_HDRLEN,
} from '../../src/netlink/codec.js';
import { decodePacketAlert, NET_DM_ATTR_TIMESTAMP, NET_DM_CMD_PACKET_ALERT } from '../../src/netdm/codec.js';
import { decodePcap, decodeSll, type Timestamp } from '../../src/pcap/index.js';
import { fixtureBytes, fixtureMessage, NETDM_FIXTURES } from '../netdm/fixtures.js';
import { nsOfPcapTime, pcapTimeOfNs } from '../helpers/pcap-time.js';

/** What the full decoder reads, as a record time (the reference's BigInt arithmetic). */
const decodedTime = (message: Uint8Array) => {
  const ns = decodePacketAlert(decodeNlMsgs(message)[0]!).timestampNs;
  return ns === undefined ? null : pcapTimeOfNs(ns);
};

const PACKET_ALERTS = ['packet-alert-0.bin', 'packet-alert-1.bin', 'packet-alert-2.bin', 'packet-alert-trunc20-0.bin'];
/** The NET_DM family id of the guest the fixtures come from (the manifest's type of every NET_DM message). */
const FAMILY = fixtureMessage('packet-alert-0.bin').header.type;

/** Where the TIMESTAMP attribute's header starts in a fixture, found with the netlink codec. */
function timestampAttrOffset(b: Uint8Array): number {
  const a = decodeAttrs(b.subarray(NLMSG_HDRLEN + GENL_HDRLEN)).find((x) => x.type === NET_DM_ATTR_TIMESTAMP);
  if (!a) throw new Error('no TIMESTAMP');
  return a.data.byteOffset - b.byteOffset - NLA_HDRLEN;
}

test("each captured PACKET_ALERT's drop time is the TIMESTAMP the full decoder reads", () => {
  const seen = new Set<string>();
  for (const name of PACKET_ALERTS) {
    const ts = packetAlertDropTime(fixtureBytes(name), FAMILY);
    assert.notEqual(ts, null, name);
    assert.deepEqual(ts, decodedTime(fixtureBytes(name)), name);
    seen.add(JSON.stringify(ts));
  }
  assert.equal(seen.size, PACKET_ALERTS.length, 'one drop time per dropped packet');
  // The guest's TIMESTAMP 1795678101780804780 ns: a real time (2026-11), not a monotonic one.
  assert.deepEqual(packetAlertDropTime(fixtureBytes('packet-alert-0.bin'), FAMILY), {
    sec: 1_795_678_101,
    usec: 780_804,
  });
});

test("the alerts in Debian dwdump's capture carry drop times just before the times dwdump received them", () => {
  const f = decodePcap(fixtureBytes('dwdump-packet.pcap'));
  const alerts = f.records.slice(1);
  assert.equal(alerts.length, 3);
  for (const r of alerts) {
    const msg = decodeSll(r.data).payload;
    const ts = packetAlertDropTime(msg, FAMILY);
    assert.ok(ts);
    assert.deepEqual(ts, decodedTime(msg));
    // Debian's dwdump stamps a record with gettimeofday() when it writes it: after the drop, by less than a second.
    const late = nsOfPcapTime(r.ts) - nsOfPcapTime(ts);
    assert.ok(late > 0n && late < 1_000_000_000n, `${late} ns`);
  }
});

test('every other message has no drop time: the family record, summary alerts, config, stats, acks', () => {
  const names = readdirSync(NETDM_FIXTURES).filter((n) => n.endsWith('.bin') && !PACKET_ALERTS.includes(n));
  assert.ok(names.includes('alert-summary-0.bin') && names.includes('ctrl-getfamily-reply.bin'));
  for (const name of names) assert.equal(packetAlertDropTime(fixtureBytes(name), FAMILY), null, name);
  // Debian's first record: the whole nlctrl dump, many messages in one record.
  const family = decodeSll(decodePcap(fixtureBytes('dwdump-packet.pcap')).records[0]!.data).payload;
  assert.equal(packetAlertDropTime(family, FAMILY), null);
  // A PACKET_ALERT of another family id is not NET_DM's.
  assert.equal(packetAlertDropTime(fixtureBytes('packet-alert-0.bin'), FAMILY + 1), null);
});

test('a malformed PACKET_ALERT has no drop time: short, cut, bad attribute length, short TIMESTAMP', () => {
  const alert = fixtureBytes('packet-alert-0.bin');
  const at = timestampAttrOffset(alert);
  assert.notEqual(packetAlertDropTime(alert, FAMILY), null);
  assert.equal(packetAlertDropTime(alert.subarray(0, 19), FAMILY), null, 'no genlmsghdr');
  assert.equal(packetAlertDropTime(alert.subarray(0, alert.length - 4), FAMILY), null, 'nlmsg_len past the end');
  const lenTooBig = alert.slice();
  new DataView(lenTooBig.buffer).setUint16(at, 0x400, true);
  assert.equal(packetAlertDropTime(lenTooBig, FAMILY), null, 'nla_len past the message');
  const lenTooSmall = alert.slice();
  new DataView(lenTooSmall.buffer).setUint16(NLMSG_HDRLEN + GENL_HDRLEN, 3, true);
  assert.equal(packetAlertDropTime(lenTooSmall, FAMILY), null, 'nla_len shorter than its header');
  // TIMESTAMP cut to 4 bytes, its other 4 an empty PAD attribute: the framing stays intact.
  const short = alert.slice();
  const v = new DataView(short.buffer);
  v.setUint16(at, 8, true);
  v.setUint16(at + 8, 4, true);
  v.setUint16(at + 10, 8 /* NET_DM_ATTR_PAD */, true);
  assert.doesNotThrow(() => decodeAttrs(short.subarray(NLMSG_HDRLEN + GENL_HDRLEN)));
  assert.equal(packetAlertDropTime(short, FAMILY), null, 'TIMESTAMP of 4 bytes');
});

test('a TIMESTAMP flagged NLA_F_NET_BYTEORDER is read big-endian, as the netlink codec reads it', () => {
  const alert = fixtureBytes('packet-alert-1.bin');
  const before = packetAlertDropTime(alert, FAMILY);
  const at = timestampAttrOffset(alert);
  const v = new DataView(alert.buffer);
  const ns = v.getBigUint64(at + 4, true);
  v.setUint16(at + 2, NET_DM_ATTR_TIMESTAMP | NLA_F_NET_BYTEORDER, true);
  v.setBigUint64(at + 4, ns, false);
  assert.deepEqual(packetAlertDropTime(alert, FAMILY), before);
  assert.deepEqual(decodedTime(alert), before);
});

test("a TIMESTAMP past pcap's u32 seconds (early 2106) has no drop time, the last one that fits has", () => {
  const alert = fixtureBytes('packet-alert-0.bin');
  const v = new DataView(alert.buffer);
  const at = timestampAttrOffset(alert) + NLA_HDRLEN;
  const last = 0xffff_ffffn * 1_000_000_000n + 999_999_999n;
  v.setBigUint64(at, last, true);
  assert.deepEqual(packetAlertDropTime(alert, FAMILY), { sec: 0xffff_ffff, usec: 999_999 });
  v.setBigUint64(at, last + 1n, true);
  assert.equal(packetAlertDropTime(alert, FAMILY), null);
});

/** The reference: the last TIMESTAMP through the netlink codec's attribute decoder, or null where it refuses. */
function reference(b: Uint8Array): Timestamp | null {
  if (b.length < NLMSG_HDRLEN) return null;
  const h = decodeNlMsgHeader(b);
  if (h.len < NLMSG_HDRLEN || h.len > b.length) return null;
  const payload = b.subarray(NLMSG_HDRLEN, h.len);
  if (h.type !== FAMILY || payload.length < GENL_HDRLEN || payload[0] !== NET_DM_CMD_PACKET_ALERT) return null;
  try {
    const ts = decodeAttrs(payload.subarray(GENL_HDRLEN)).filter((a) => a.type === NET_DM_ATTR_TIMESTAMP);
    return ts.length === 0 ? null : pcapTimeOfNs(attrU64(ts[ts.length - 1]!));
  } catch {
    return null;
  }
}

test('fast-check: edited and cut real alerts give the codec reference time or null, never a throw or an over-read', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...PACKET_ALERTS),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat(),
      fc.nat({ max: 7 }),
      (name, edits, cut, lead) => {
        const orig = fixtureBytes(name);
        for (const [pos, value] of edits) orig[pos % orig.length] = value;
        const len = cut % (orig.length + 1);
        // The message inside a larger buffer (as in a receive batch), followed by a valid alert: reading past its
        // end would find a TIMESTAMP there, so an over-read shows as a different answer.
        const follower = fixtureBytes('packet-alert-2.bin');
        const big = new Uint8Array(lead + len + follower.length);
        big.set(orig.subarray(0, len), lead);
        big.set(follower, lead + len);
        const got = packetAlertDropTime(big.subarray(lead, lead + len), FAMILY);
        assert.deepEqual(got, reference(orig.slice(0, len)));
        // Where the full decoder accepts the message, both read the same time.
        let decoded;
        try {
          const [m] = decodeNlMsgs(orig.slice(0, len));
          decoded = m && decodePacketAlert(m);
        } catch {
          // rejected by the decoder: the reference above already fixed the answer
        }
        if (decoded && decodeNlMsgHeader(orig).type === FAMILY)
          assert.deepEqual(got, decoded.timestampNs === undefined ? null : pcapTimeOfNs(decoded.timestampNs));
      },
    ),
    { numRuns: 5000 },
  );
});
