// Property tests: whatever bytes arrive, the decoders return a value or throw DropwatchError('E_DECODE'), and stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  attrMap,
  attrString,
  attrU16,
  attrU32,
  attrU64,
  attrU8,
  decodeAttrs,
  decodeDone,
  decodeGenl,
  decodeNlError,
  decodeNlMsgs,
  NLMSG_DONE,
  NLMSG_ERROR,
  type NlAttr,
} from '../../src/netlink/codec.js';
import { decodeFamily } from '../../src/netlink/nlctrl.js';
import { DropwatchError } from '../../src/errors/index.js';
import { allDatagrams } from './fixtures.js';

function decodeOnly(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof DropwatchError) || e.code !== 'E_DECODE') throw e;
  }
}

// Reads every attribute as every scalar and as nested, recursively, the way a careless consumer might.
function deep(attrs: NlAttr[], depth = 0): void {
  for (const a of attrs) {
    for (const get of [attrU8, attrU16, attrU32, attrU64, attrString]) decodeOnly(() => get(a));
    if (depth < 8) decodeOnly(() => deep(decodeAttrs(a.data), depth + 1));
  }
}

// Everything a consumer of a received datagram would call.
function consume(datagram: Uint8Array): void {
  decodeOnly(() => {
    for (const m of decodeNlMsgs(datagram)) {
      decodeOnly(() => decodeNlError(m));
      decodeOnly(() => decodeDone(m));
      decodeOnly(() => decodeFamily(m));
      for (const hdr of [0, 4, 7]) decodeOnly(() => deep(decodeAttrs(decodeGenl(m, hdr).attrs)));
      decodeOnly(() => attrMap(m.payload));
    }
  });
  decodeOnly(() => deep(decodeAttrs(datagram)));
}

const seeds = allDatagrams();

test('random bytes: decoders return or throw E_DECODE', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      consume(bytes);
    }),
    { numRuns: 3000 },
  );
});

test('random bytes behind a plausible header: same', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 600 }),
      fc.constantFrom(NLMSG_ERROR, NLMSG_DONE, 0x10, 0x15),
      fc.integer({ min: 0, max: 0xffff }),
      fc.uint8Array({ maxLength: 512 }),
      (len, type, flags, body) => {
        const d = new Uint8Array(16 + body.length);
        const v = new DataView(d.buffer);
        v.setUint32(0, len, true);
        v.setUint16(4, type, true);
        v.setUint16(6, flags, true);
        d.set(body, 16);
        consume(d);
      },
    ),
    { numRuns: 3000 },
  );
});

test('mutated captured datagrams: byte flips, cuts and splices', () => {
  const mutation = fc.record({
    seed: fc.integer({ min: 0, max: seeds.length - 1 }),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    cut: fc.option(fc.nat()),
    splice: fc.option(fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 16 }))),
  });
  fc.assert(
    fc.property(mutation, ({ seed, flips, cut, splice }) => {
      let d = Uint8Array.from(seeds[seed]!);
      for (const [at, value] of flips) if (d.length > 0) d[at % d.length] = value;
      if (splice) {
        const at = splice[0] % (d.length + 1);
        d = Uint8Array.from([...d.subarray(0, at), ...splice[1], ...d.subarray(at)]);
      }
      if (cut !== null) d = d.subarray(0, cut % (d.length + 1));
      consume(d);
    }),
    { numRuns: 5000 },
  );
});

test('every prefix of every captured datagram', () => {
  for (const d of seeds) for (let n = 0; n <= d.length; n++) consume(d.subarray(0, n));
  assert.ok(seeds.length >= 10);
});
