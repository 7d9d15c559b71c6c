// The flow decoder on bytes from real kernels: drop_monitor's packet alerts (qemu guest) and frames of every kind this
// machine's kernel makes (host-flows.pcap), each checked against what tshark decoded from the same frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFlow, MAX_VLANS, type Flow } from '../../src/packet/index.js';
import { capture, hostFrames, netdmPackets, type Frame } from './fixtures.js';

const frames = hostFrames();
const ETHERTYPES: Record<string, number> = { '0x0800': 0x0800, '0x86dd': 0x86dd, '0x0806': 0x0806 };
// tshark's layer names for the headers between IP and the transport, which the flow passes over.
const SKIPPED = new Set(['ipv6.hopopts', 'ipv6.routing', 'ipv6.dstopts', 'ipv6.fraghdr', 'ah']);

/** The flow fields tshark's reading of a frame gives, in the decoder's terms. */
function expected(fr: Frame): Partial<Flow> {
  const t = fr.tshark;
  const layers = t['frame.protocols']!.split(':');
  const e: Partial<Flow> = { vlans: [], stopped: null };
  if (t['eth.type'] === '0x0806') {
    return {
      ...e,
      l3: 'arp',
      src: t['arp.src.proto_ipv4']!,
      dst: t['arp.dst.proto_ipv4']!,
      l4: null,
      arpOp: Number(t['arp.opcode']),
    };
  }
  const v6 = t['eth.type'] === '0x86dd';
  e.l3 = v6 ? 'ipv6' : 'ipv4';
  e.src = t[v6 ? 'ipv6.src' : 'ip.src']!;
  e.dst = t[v6 ? 'ipv6.dst' : 'ip.dst']!;
  let i = layers.indexOf(v6 ? 'ipv6' : 'ip') + 1;
  while (SKIPPED.has(layers[i]!)) i++;
  const later = v6 ? Number(t['ipv6.fraghdr.offset'] || 0) > 0 : Number(t['ip.frag_offset']) > 0;
  // A later fragment is "data" to tshark (reassembly off): the protocol is the IP header's.
  const l4 = later ? ((v6 ? t['ipv6.fraghdr.nxt'] : t['ip.proto']) === '17' ? 'udp' : '?') : layers[i]!;
  e.l4 = l4;
  if (!later && (l4 === 'udp' || l4 === 'tcp')) {
    e.sport = Number(t[`${l4}.srcport`]);
    e.dport = Number(t[`${l4}.dstport`]);
    e.length = l4 === 'tcp' ? Number(t['tcp.len']) : Number(t['udp.length']) - 8;
  } else {
    e.sport = null;
    e.dport = null;
  }
  if (l4 === 'icmp' || l4 === 'icmpv6') {
    e.icmpType = Number(t[`${l4}.type`]);
    e.icmpCode = Number(t[`${l4}.code`]);
  }
  if (l4 === 'tcp') e.tcpFlags = Number(t['tcp.flags']);
  const offset = v6 ? t['ipv6.fraghdr.offset'] : t['ip.frag_offset'];
  const more = v6 ? t['ipv6.fraghdr.more'] : t['ip.flags.mf'];
  if (offset !== '' && (Number(offset) > 0 || more === '1' || more === 'True'))
    e.fragment = { offset: Number(offset) * 8, more: more === '1' || more === 'True' };
  return e;
}

function pick(f: Flow, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, (f as unknown as Record<string, unknown>)[k]]));
}

test('host frames: every frame decodes as tshark decodes it (addresses, protocol, ports, ICMP, fragments, ARP)', () => {
  const kinds = new Set<string>();
  for (const fr of frames) {
    const etherType = ETHERTYPES[fr.tshark['eth.type']!];
    assert.ok(etherType !== undefined, `frame ${fr.number}: EtherType ${fr.tshark['eth.type']}`);
    const want = expected(fr);
    const got = decodeFlow(fr.bytes, etherType);
    assert.deepEqual(pick(got, Object.keys(want)), want, `frame ${fr.number}: ${fr.tshark['frame.protocols']}`);
    assert.equal(got.etherType, etherType);
    kinds.add(fr.tshark['frame.protocols']!.replace(/^eth:ethertype:/, ''));
  }
  // The capture holds each kind the decoder must pass over or stop at; a recapture that lost one fails here.
  for (const kind of [
    'arp',
    'ip:udp:data',
    'ip:tcp',
    'ip:icmp:data',
    'ip:data',
    'ipv6:udp:data',
    'ipv6:tcp',
    'ipv6:icmpv6:data',
    'ipv6:ipv6.hopopts:icmpv6',
    'ipv6:ipv6.hopopts:udp:data',
    'ipv6:ipv6.dstopts:udp:data',
    'ipv6:ipv6.routing:udp:data',
    'ipv6:ipv6.fraghdr:udp:data',
    'ipv6:ipv6.fraghdr:data',
    'ipv6:esp',
    'ipv6:ah:udp:data',
  ])
    assert.ok(kinds.has(kind), `no ${kind} frame in host-flows.pcap`);
});

test('without a MAC header (a tunnel, ARPHRD_NONE): the IP packet alone decodes the same under its protocol', () => {
  for (const fr of frames) {
    const etherType = ETHERTYPES[fr.tshark['eth.type']!]!;
    if (etherType === 0x0806) continue;
    const full = decodeFlow(fr.bytes, etherType);
    delete full.etherType;
    assert.deepEqual(decodeFlow(fr.bytes.subarray(14), etherType), full, `frame ${fr.number}`);
  }
});

test('NET_DM packet alerts from drop_monitor: the UDP datagrams to 127.0.0.1:9, the trunc 20 one cut short', () => {
  for (const { name, packet } of netdmPackets()) {
    const flow = decodeFlow(packet.payload!, packet.protocol);
    if (name.includes('trunc20')) {
      assert.equal(packet.payload!.length, 20);
      assert.deepEqual(flow, {
        l3: 'ipv4',
        src: null,
        dst: null,
        l4: null,
        sport: null,
        dport: null,
        vlans: [],
        stopped: 'truncated in the IPv4 header',
        etherType: 0x0800,
      });
      continue;
    }
    // The UDP payload is the datagram the sender wrote (dropwatch-1, dwdump-22, …): its length is the flow's.
    const text = Buffer.from(packet.payload!.subarray(42)).toString();
    assert.match(text, /^(dropwatch|dwdump)-\d+$/, name);
    assert.equal(flow.l3, 'ipv4', name);
    assert.equal(flow.src, '127.0.0.1');
    assert.equal(flow.dst, '127.0.0.1');
    assert.equal(flow.l4, 'udp');
    assert.equal(flow.dport, 9);
    assert.equal(flow.sport, Buffer.from(packet.payload!).readUInt16BE(34), name);
    assert.equal(flow.length, text.length, name);
    assert.equal(flow.stopped, null);
  }
});

test('every prefix of every frame: the fields found agree with the whole frame, and what is missing is said', () => {
  const all = [...frames, ...capture('guest-vlan')].map((f) => f.bytes);
  all.push(...netdmPackets().map((p) => p.packet.payload!));
  for (const [k, bytes] of all.entries()) {
    const full = decodeFlow(bytes);
    for (let n = 0; n < bytes.length; n++) {
      const part = decodeFlow(bytes.subarray(0, n));
      if (part.stopped === null) {
        // Nothing missing: only the payload was cut, so the flow is the whole frame's.
        assert.deepEqual(part, full, `frame ${k} cut to ${n}`);
        continue;
      }
      assert.match(part.stopped, /^truncated in /, `frame ${k} cut to ${n}`);
      // The VLAN tags read so far lead the whole frame's.
      assert.deepEqual(part.vlans, full.vlans.slice(0, part.vlans.length), `frame ${k} cut to ${n}: vlans`);
      for (const [key, value] of Object.entries(part))
        if (key !== 'stopped' && key !== 'vlans' && value !== null)
          assert.deepEqual(value, (full as unknown as Record<string, unknown>)[key], `frame ${k} cut to ${n}: ${key}`);
    }
  }
});

test('set trunc 20 on a loopback IPv4 frame says where it stopped; 14 bytes and less stop in the Ethernet header', () => {
  const udp = frames.find((f) => f.tshark['frame.protocols'] === 'eth:ethertype:ip:udp:data')!.bytes;
  assert.equal(decodeFlow(udp.subarray(0, 20), 0x0800).stopped, 'truncated in the IPv4 header');
  assert.equal(decodeFlow(udp.subarray(0, 40), 0x0800).stopped, 'truncated in the UDP header');
  assert.equal(decodeFlow(udp.subarray(0, 38), 0x0800).sport, Buffer.from(udp).readUInt16BE(34));
  assert.equal(decodeFlow(udp.subarray(0, 13), 0x0800).stopped, 'truncated in the Ethernet header');
  assert.equal(decodeFlow(new Uint8Array(0), 0x86dd).stopped, 'truncated in the Ethernet header');
});

test('malformed headers stop with a reason, keeping what came before', () => {
  const udp = Buffer.from(frames.find((f) => f.tshark['frame.protocols'] === 'eth:ethertype:ip:udp:data')!.bytes);
  const with_ = (edit: (b: Buffer) => void): Flow => {
    const b = Buffer.from(udp);
    edit(b);
    return decodeFlow(b, 0x0800);
  };
  assert.equal(with_((b) => (b[14] = 0x44)).stopped, 'IPv4 header length 16 is under 20');
  assert.equal(with_((b) => (b[14] = 0x65)).stopped, 'IP version 6 where an IPv4 header should be');
  assert.equal(with_((b) => b.writeUInt16BE(10, 16)).stopped, 'IPv4 total length 10 is under its header length 20');
  assert.equal(with_((b) => b.writeUInt16BE(24, 16)).stopped, "the UDP header runs past the IP packet's length");
  const badUdp = with_((b) => b.writeUInt16BE(3, 38));
  assert.equal(badUdp.stopped, 'UDP length 3 is under 8');
  assert.equal(badUdp.dport, 9);
  // Bytes that are no Ethernet header and not the IP header the protocol names.
  assert.match(decodeFlow(udp.subarray(16), 0x0800).stopped ?? '', /^the bytes start with neither an Ethernet/);
});

test('VLAN tags: a real QinQ frame cut inside its tags; more than MAX_VLANS tags stop', () => {
  // The guest kernel's 802.1ad 300 + 802.1Q 400 frame (guest-vlan.pcap); this machine's kernel has no 802.1Q.
  const qinq = Buffer.from(capture('guest-vlan').find((f) => f.tshark['ieee8021ad.id'] === '300')!.bytes);
  assert.deepEqual(decodeFlow(qinq).vlans, [300, 400]);
  assert.deepEqual(decodeFlow(qinq.subarray(0, 18)), {
    ...decodeFlow(new Uint8Array(0)),
    vlans: [300],
    stopped: 'truncated in a VLAN tag',
  });
  // Hostile input: the outer tag repeated past the limit.
  const many = Buffer.concat([
    qinq.subarray(0, 12),
    ...Array.from({ length: MAX_VLANS }, () => qinq.subarray(12, 16)),
    qinq.subarray(12),
  ]);
  const flow = decodeFlow(many);
  assert.equal(flow.stopped, `more than ${MAX_VLANS} VLAN tags`);
  assert.equal(flow.vlans.length, MAX_VLANS);
  assert.equal(flow.l3, null);
});
