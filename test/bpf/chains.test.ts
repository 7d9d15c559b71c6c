// Call chains on the bpf source, pure: chain records captured from the real kernel (6.18) decoded, summary samples as
// count-0 entries with the callers behind the location, packet chains matched to their records, and the budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  CHAIN_HEADER_BYTES,
  chainEntries,
  decodeChains,
  PacketChains,
  StackBudget,
  type ChainRecord,
} from '../../src/bpf/chains.js';
import { decodePackets } from '../../src/bpf/decode.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../../../test/fixtures/bpf/${name}`, import.meta.url));
// Captured: 7 datagrams to a closed UDP port in a test namespace, every one sampled (stride 1), in summary mode: two
// distinct chains (ip_finish_output2 at two places). Then 3 more in packet mode: the records and their chain notes
// (the records moved to the 344-byte layout: 8 zero bytes of cgroup at 80, as the program writes for softirq drops).
const SUMMARY = fixture('chains-udp-closed-port.bin');
const NOTES = fixture('packet-chains-udp-closed-port.bin');
const PACKETS = fixture('packets-with-chains-udp-closed-port.bin');
const UDP4_RCV = 0xffffffff8209ec6cn;
const IP_PROTOCOL_DELIVER_RCU = 0xffffffff8204bc68n; // +d8
const IP_LOCAL_DELIVER_FINISH = 0xffffffff8204bdd1n; // +81
const NETIF_RECEIVE_SKB_ONE_CORE = 0xffffffff81eaf99dn; // +8d
const SK_SKB_REASON_DROP = 0xffffffff81e8b6f0n; // +90, the freeing function: not a caller
const REASONS = new Map([[3, 'NO_SOCKET']]);

test('chain records: location, sampled count, reason and frames, the tracing frames and the location among them', () => {
  const records = decodeChains(SUMMARY);
  assert.equal(records.length, 2);
  assert.equal(
    records.reduce((n, r) => n + r.count, 0),
    7,
  );
  for (const r of records) {
    assert.equal(r.location, UDP4_RCV);
    assert.equal(r.timeNs, 0n, 'a summary sample');
    assert.equal(r.reason, 3);
    assert.equal(r.frames.length, 24);
    assert.equal(r.frames[3], UDP4_RCV);
    assert.equal(r.frames[2], SK_SKB_REASON_DROP);
  }
});

test('chain records cut short are refused, not read past', () => {
  assert.throws(() => decodeChains(SUMMARY.subarray(0, CHAIN_HEADER_BYTES - 1)), RangeError);
  assert.throws(() => decodeChains(SUMMARY.subarray(0, CHAIN_HEADER_BYTES + 8)), RangeError);
  assert.deepEqual(decodeChains(new Uint8Array(0)), []);
});

test('summary samples become count-0 entries whose chains start at the caller of the location', () => {
  const entries = chainEntries(decodeChains(SUMMARY), REASONS);
  assert.equal(entries.length, 2);
  for (const e of entries) {
    assert.equal(e.count, 0, 'samples never add drops');
    assert.equal(e.pc, UDP4_RCV);
    assert.equal(e.reason, 'NO_SOCKET');
    assert.equal(e.stacks!.chains.length, 1);
    const chain = e.stacks!.chains[0]!;
    assert.equal(chain.count, e.stacks!.sampled);
    assert.deepEqual(chain.frames.slice(0, 3), [
      IP_PROTOCOL_DELIVER_RCU,
      IP_LOCAL_DELIVER_FINISH,
      NETIF_RECEIVE_SKB_ONE_CORE,
    ]);
    assert.ok(!chain.frames.includes(SK_SKB_REASON_DROP));
  }
  assert.deepEqual(entries.map((e) => e.stacks!.sampled).sort(), [1, 6]);
});

test('a sample whose stack could not be taken counts as sampled, with no chain; packet notes are not samples', () => {
  const none: ChainRecord = { location: UDP4_RCV, timeNs: 0n, count: 4, reason: 99, frames: [] };
  const note: ChainRecord = { ...none, timeNs: 5n, count: 1, frames: [UDP4_RCV, IP_PROTOCOL_DELIVER_RCU] };
  assert.deepEqual(chainEntries([none, note], REASONS), [
    { origin: 'software', pc: UDP4_RCV, reason: 'UNKNOWN(99)', count: 0, stacks: { sampled: 4, chains: [] } },
  ]);
});

test('packet chains: each captured record finds its chain by time and location, once', () => {
  const chains = new PacketChains();
  chains.add(decodeChains(NOTES));
  chains.add(decodeChains(SUMMARY)); // summary samples are not packet notes
  assert.equal(chains.size, 3);
  const packets = decodePackets(PACKETS, 344);
  assert.equal(packets.length, 3);
  for (const p of packets) {
    const chain = chains.take(p.monoNs, p.location);
    assert.deepEqual(chain?.slice(0, 2), [IP_PROTOCOL_DELIVER_RCU, IP_LOCAL_DELIVER_FINISH]);
    assert.equal(chains.take(p.monoNs, p.location), undefined, 'taken once');
  }
  assert.equal(chains.size, 0);
  assert.equal(chains.take(1n, UDP4_RCV), undefined, 'a packet not sampled has none');
});

test('packet chains whose records never come are let go, oldest first, past the bound', () => {
  const chains = new PacketChains(2);
  const note = (t: bigint): ChainRecord => ({ location: 1n, timeNs: t, count: 1, reason: 0, frames: [1n, 2n] });
  chains.add([note(1n), note(2n), note(3n)]);
  assert.equal(chains.size, 2);
  assert.equal(chains.take(1n, 1n), undefined);
  assert.deepEqual(chains.take(3n, 1n), [2n]);
});

test('the budget: renewed each second, its stride from the last second so a steady rate spreads over it', () => {
  const budget = new StackBudget(1000);
  // The first second knows no rate: every drop is a candidate until the limit.
  assert.deepEqual(budget.at(10_000, 0), { stride: 1, limit: 1000 });
  assert.equal(budget.at(10_500, 300_000), null, 'within the second nothing changes');
  assert.deepEqual(budget.at(11_000, 500_000), { stride: 500, limit: 1000 });
  // Two seconds passed: the rate is per second.
  assert.deepEqual(budget.at(13_200, 1_500_000), { stride: 500, limit: 1000 });
  // A quiet second: every drop a candidate again.
  assert.deepEqual(budget.at(14_000, 1_500_400), { stride: 1, limit: 1000 });
  assert.throws(() => new StackBudget(0), RangeError);
});
