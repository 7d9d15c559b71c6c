// Codec tests on datagrams captured from this machine's kernel (see test/fixtures/netlink/capture.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttrIndex,
  attrMap,
  attrString,
  attrU16,
  attrU32,
  decodeAttrs,
  decodeDone,
  decodeGenl,
  decodeNlError,
  decodeNlMsgs,
  encodeGenl,
  encodeNlMsg,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  nlaFlag,
  nlaNested,
  nlaString,
  nlaU16,
  nlaU32,
  nlaU64,
  nlaU8,
  nlaBinary,
  attrU8,
  attrU64,
  attrFlagPresent,
  NLA_F_NET_BYTEORDER,
} from '../../src/netlink/codec.js';
import {
  CTRL_ATTR_FAMILY_NAME,
  CTRL_CMD_GETFAMILY,
  CTRL_VERSION,
  decodeFamily,
  GENL_ID_CTRL,
  getFamilyRequestBody,
} from '../../src/netlink/nlctrl.js';
import { DropwatchError } from '../../src/errors/index.js';
import { captured } from './fixtures.js';

test('GETFAMILY nlctrl reply: header, family, groups, raw bytes', () => {
  const { info, datagrams } = captured('getfamily-nlctrl');
  const [reply, ack] = datagrams as [Uint8Array, Uint8Array];
  const msgs = decodeNlMsgs(reply);
  assert.equal(msgs.length, 1);
  const m = msgs[0]!;
  assert.deepEqual(m.header, { len: reply.length, type: GENL_ID_CTRL, flags: 0, seq: info.seq, pid: info.portId });
  const f = decodeFamily(m);
  assert.equal(f.name, 'nlctrl');
  assert.equal(f.id, 0x10);
  assert.equal(f.version, 2);
  assert.equal(f.hdrsize, 0);
  assert.deepEqual([...f.mcastGroups], [['notify', 0x10]]);
  assert.ok(f.ops.has(CTRL_CMD_GETFAMILY));
  assert.deepEqual(f.raw, reply); // the whole message, for dwdump's first pcap record

  const a = decodeNlMsgs(ack);
  assert.equal(a.length, 1);
  assert.equal(a[0]!.header.type, NLMSG_ERROR);
  assert.equal(a[0]!.header.flags & NLM_F_CAPPED, NLM_F_CAPPED);
  const e = decodeNlError(a[0]!);
  assert.equal(e.errno, 0);
  assert.equal(e.request.seq, info.seq);
  assert.equal(e.request.type, GENL_ID_CTRL);
  assert.equal(e.request.flags, NLM_F_REQUEST | NLM_F_ACK);
  assert.equal(e.requestPayload, undefined);
  assert.equal(e.extack, undefined);
});

test('GETFAMILY ethtool reply: a family with a multicast group and many ops', () => {
  const { datagrams } = captured('getfamily-ethtool');
  const f = decodeFamily(decodeNlMsgs(datagrams[0]!)[0]!);
  assert.equal(f.name, 'ethtool');
  assert.equal(f.version, 1);
  assert.equal(f.hdrsize, 0);
  assert.ok(f.id >= 0x10 && f.id < 0x10000);
  assert.deepEqual([...f.mcastGroups.keys()], ['monitor']);
  assert.ok(f.ops.size > 10);
  assert.equal(f.maxattr, 0); // ethtool has per-op policies, so the family-wide maxattr is 0
});

test('our encoder produces the very request the capture script built by hand', () => {
  for (const name of ['getfamily-nlctrl', 'getfamily-ethtool', 'getfamily-netdm-missing']) {
    const { info, request } = captured(name);
    const familyName = { 'getfamily-nlctrl': 'nlctrl', 'getfamily-ethtool': 'ethtool' }[name] ?? 'NET_DM';
    const viaBody = encodeNlMsg(
      { type: GENL_ID_CTRL, flags: NLM_F_REQUEST | NLM_F_ACK, seq: info.seq },
      getFamilyRequestBody(familyName),
    );
    assert.deepEqual(viaBody, request);
    const viaGenl = encodeGenl(
      {
        family: GENL_ID_CTRL,
        cmd: CTRL_CMD_GETFAMILY,
        version: CTRL_VERSION,
        flags: NLM_F_REQUEST | NLM_F_ACK,
        seq: info.seq,
      },
      [nlaString(CTRL_ATTR_FAMILY_NAME, familyName)],
    );
    assert.deepEqual(viaGenl, request);
  }
});

test('missing family: ENOENT, capped, no extended ACK on this kernel', () => {
  const { info, datagrams } = captured('getfamily-netdm-missing');
  const m = decodeNlMsgs(datagrams[0]!);
  assert.equal(m.length, 1);
  const e = decodeNlError(m[0]!);
  assert.equal(e.errno, 2);
  assert.equal(e.request.seq, info.seq);
  assert.equal(e.request.pid, 0);
  assert.equal(e.requestPayload, undefined);
  assert.equal(e.extack, undefined);
});

test('missing family without NETLINK_CAP_ACK echoes the whole request', () => {
  const { datagrams, request } = captured('getfamily-netdm-missing-uncapped');
  const m = decodeNlMsgs(datagrams[0]!)[0]!;
  assert.equal(m.header.flags & NLM_F_CAPPED, 0);
  const e = decodeNlError(m);
  assert.equal(e.errno, 2);
  assert.equal(e.request.len, request.length);
  assert.deepEqual(e.requestPayload, request.subarray(16));
});

test('policy error carries the extended-ACK text and the offset of the bad attribute', () => {
  for (const name of ['getfamily-policy-error', 'getfamily-policy-error-uncapped']) {
    const { datagrams, request } = captured(name);
    const m = decodeNlMsgs(datagrams[0]!)[0]!;
    assert.equal(m.header.flags & NLM_F_ACK_TLVS, NLM_F_ACK_TLVS);
    const e = decodeNlError(m);
    assert.equal(e.errno, 22);
    assert.equal(e.extack?.msg, 'Attribute failed policy validation');
    // 16 (nlmsghdr) + 4 (genlmsghdr): the CTRL_ATTR_FAMILY_NAME attribute
    assert.equal(e.extack?.offset, 20);
    const at = decodeAttrs(request.subarray(e.extack.offset));
    assert.equal(at[0]!.type, CTRL_ATTR_FAMILY_NAME);
    if (name.endsWith('uncapped')) assert.deepEqual(e.requestPayload, request.subarray(16));
    // NLMSGERR_ATTR_POLICY arrives as 0x8004: the nested flag is masked off the type
    assert.deepEqual(
      e.extack?.policy?.map((a) => [a.type, attrU32(a)]),
      [
        [7, 15], // NL_POLICY_TYPE_ATTR_MAX_LENGTH: GENL_NAMSIZ - 1
        [1, 12], // NL_POLICY_TYPE_ATTR_TYPE: NL_ATTR_TYPE_NUL_STRING
      ],
    );
  }
});

test('dump: many NEWFAMILY messages per datagram, then NLMSG_DONE', () => {
  const { info, datagrams } = captured('getfamily-dump');
  const msgs = decodeNlMsgs(datagrams[0]!);
  assert.ok(msgs.length > 5);
  let total = 0;
  for (const m of msgs) {
    assert.equal(m.header.type, GENL_ID_CTRL);
    assert.equal(m.header.flags & NLM_F_MULTI, NLM_F_MULTI);
    assert.equal(m.header.seq, info.seq);
    total += (m.header.len + 3) & ~3;
  }
  assert.equal(total, datagrams[0]!.length);
  const fams = msgs.map(decodeFamily);
  const byName = new Map(fams.map((f) => [f.name, f]));
  assert.equal(byName.get('nlctrl')?.id, 0x10);
  const ethtool = decodeFamily(decodeNlMsgs(captured('getfamily-ethtool').datagrams[0]!)[0]!);
  assert.equal(byName.get('ethtool')?.id, ethtool.id);
  assert.equal(byName.has('NET_DM'), false);

  const done = decodeNlMsgs(datagrams[1]!);
  assert.equal(done.length, 1);
  assert.equal(done[0]!.header.type, NLMSG_DONE);
  assert.equal(done[0]!.header.flags & NLM_F_MULTI, NLM_F_MULTI);
  assert.deepEqual(decodeDone(done[0]!), { errno: 0 });
  // a dump request carries NLM_F_DUMP and no ACK flag
  assert.equal(new DataView(captured('getfamily-dump').request.buffer).getUint16(6, true), NLM_F_REQUEST | NLM_F_DUMP);
});

test('genl header and attribute accessors on the nlctrl reply', () => {
  const m = decodeNlMsgs(captured('getfamily-nlctrl').datagrams[0]!)[0]!;
  const g = decodeGenl(m);
  assert.equal(g.family, GENL_ID_CTRL);
  assert.equal(g.cmd, 1);
  assert.equal(g.familyHeader.length, 0);
  const a = attrMap(g.attrs);
  assert.equal(attrString(a.get(CTRL_ATTR_FAMILY_NAME)!), 'nlctrl');
  assert.equal(attrU16(a.get(1)!), 0x10);
});

test('attribute encoders round-trip through the decoders', () => {
  const bytes = new Uint8Array([
    ...nlaU8(1, 0xab),
    ...nlaU16(2, 0xbeef),
    ...nlaU32(3, 0xdeadbeef),
    ...nlaU64(4, 0xffffffff9b484062n),
    ...nlaString(5, 'eth0'),
    ...nlaFlag(6),
    ...nlaBinary(7, new Uint8Array([1, 2, 3])),
    ...nlaNested(8, [nlaU32(0, 1), nlaString(1, 'lo')]),
  ]);
  const m = attrMap(bytes);
  assert.equal(attrU8(m.get(1)!), 0xab);
  assert.equal(attrU16(m.get(2)!), 0xbeef);
  assert.equal(attrU32(m.get(3)!), 0xdeadbeef);
  assert.equal(attrU64(m.get(4)!), 0xffffffff9b484062n);
  assert.equal(attrString(m.get(5)!), 'eth0');
  assert.equal(attrFlagPresent(m, 6), true);
  assert.equal(attrFlagPresent(m, 9), false);
  assert.deepEqual([...m.get(7)!.data], [1, 2, 3]);
  assert.equal(m.get(8)!.nested, true);
  const inner = attrMap(m.get(8)!.data);
  assert.equal(attrU32(inner.get(0)!), 1);
  assert.equal(attrString(inner.get(1)!), 'lo');
});

test('truncated and inconsistent bytes throw E_DECODE', () => {
  const reply = captured('getfamily-nlctrl').datagrams[0]!;
  const codeOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (e) {
      assert.ok(e instanceof DropwatchError);
      return e.code;
    }
  };
  assert.equal(
    codeOf(() => decodeNlMsgs(reply.subarray(0, reply.length - 1))),
    'E_DECODE',
  );
  assert.equal(
    codeOf(() => decodeNlMsgs(reply.subarray(0, 10))),
    'E_DECODE',
  );
  assert.equal(
    codeOf(() => decodeFamily(decodeNlMsgs(captured('getfamily-nlctrl').datagrams[1]!)[0]!)),
    'E_DECODE',
  );
  assert.equal(
    codeOf(() => decodeAttrs(new Uint8Array([3, 0, 1, 0]))),
    'E_DECODE',
  );
  assert.equal(
    codeOf(() => attrU32(decodeAttrs(nlaU16(1, 1))[0]!)),
    'E_DECODE',
  );
});

test('AttrIndex reads what attrMap and the attr* readers read: last of a repeated type, byte order, strings', () => {
  const netOrderU16 = nlaU16(2, 0x0800);
  new DataView(netOrderU16.buffer).setUint16(2, 2 | NLA_F_NET_BYTEORDER, true);
  new DataView(netOrderU16.buffer).setUint16(4, 0x0800, false);
  const bytes = new Uint8Array([
    ...nlaU32(3, 1),
    ...nlaU32(3, 0xdeadbeef),
    ...netOrderU16,
    ...nlaU64(4, 0xffffffff9b484062n),
    ...nlaString(5, 'eth0'),
    ...nlaU32(40, 7),
    ...nlaBinary(7, new Uint8Array([1, 2, 3])),
  ]);
  const m = attrMap(bytes);
  const x = new AttrIndex(8).scan(bytes);
  assert.equal(x.u32(3), attrU32(m.get(3)!));
  assert.equal(x.u32(3), 0xdeadbeef);
  assert.equal(x.u16(2), attrU16(m.get(2)!));
  assert.equal(x.u16(2), 0x0800);
  assert.equal(x.u64(4), 0xffffffff9b484062n);
  assert.equal(x.string(5), 'eth0');
  assert.deepEqual([...x.bytes(7)], [1, 2, 3]);
  assert.equal(x.has(1), false);
  assert.equal(x.has(8), false);
  assert.throws(() => x.u32(1), { code: 'E_DECODE' });
  assert.throws(() => x.u64(3), { code: 'E_DECODE', message: 'netlink: attribute 3: 4 bytes, u64 needs 8' });
  // A new scan forgets the last one's attributes.
  assert.equal(x.scan(nlaU8(1, 9)).has(3), false);
  assert.equal(x.u8(1), 9);
});

test('AttrIndex.string: a remembered string is reused only for the same bytes; NUL ends it; framing errors as decodeAttrs', () => {
  const x = new AttrIndex(5);
  assert.equal(x.scan(nlaString(5, 'eth0')).string(5), 'eth0');
  assert.equal(x.scan(nlaString(5, 'eth1')).string(5), 'eth1');
  assert.equal(x.scan(nlaString(5, 'eth1')).string(5), 'eth1');
  assert.equal(x.scan(nlaString(5, 'eth')).string(5), 'eth');
  assert.equal(x.scan(nlaString(5, 'lo\u0000xx')).string(5), 'lo');
  assert.equal(x.scan(nlaBinary(5, new Uint8Array([0xc3, 0xa9]))).string(5), 'é');
  for (const bad of [new Uint8Array([3, 0, 1, 0]), new Uint8Array([8, 0, 1, 0, 0]), new Uint8Array([8, 0])]) {
    let expected = '';
    try {
      decodeAttrs(bad);
    } catch (e) {
      expected = (e as Error).message;
    }
    assert.throws(() => x.scan(bad), { code: 'E_DECODE', message: expected });
  }
});
