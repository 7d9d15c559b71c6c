// Hardware (devlink trap) drops on the bpf source, on a real kernel: a qemu boot with netdevsim (the hw layer; shared
// with the run's other qemu sessions, see test/qemu/suite.ts) runs test/bpf/guest/hardware.sh, where our bpf backend
// and NET_DM (Debian's dropwatch) watch the same traps at once. The host holds our lines against NET_DM's and both
// against devlink's own counters. Skips when the guest, the hw layer or the bpf addon cannot be had.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keepTranscript, type GuestResult } from '../qemu/harness.js';
import { sessionResult, sessionUnavailable } from '../qemu/suite.js';
import { TRAPS, GROUP, TRAP_FRAME_LEN, DROP_LINE, reported, summed } from '../helpers/traps.js';
import { validateEvent } from '../helpers/schema.js';

/** Packet blocks ("drop at:" to the blank line), timestamps and our flow line (ours alone) left out. */
function blocks(lines: string[]): string[] {
  const out: string[] = [];
  let cur: string[] | null = null;
  for (const l of lines) {
    if (l.startsWith('drop at: ')) cur = [l];
    else if (cur !== null && l === '') {
      out.push(cur.join('\n'));
      cur = null;
    } else if (cur !== null && !l.startsWith('flow: ')) cur.push(l.startsWith('timestamp: ') ? 'timestamp: T' : l);
  }
  return out.sort();
}

test('hardware drops on bpf in qemu: netdevsim traps, our bpf backend beside NET_DM on the same traps', async (t) => {
  const why = await sessionUnavailable('bpf-hardware');
  if (why !== null) {
    t.skip(why);
    return;
  }
  const r: GuestResult = await sessionResult('bpf-hardware');
  const { sec } = keepTranscript(t, r, 'bpf-hw');
  assert.equal(r.exitCode, 0, r.stderr);
  const setup = sec('setup');
  const port = /^ifname=(\S+) ifindex=(\d+)$/.exec(setup.find((l) => l.startsWith('ifname=')) ?? '');
  assert.ok(port, setup.join('\n'));
  const [ifname, ifindex] = [port[1]!, Number(port[2])];

  await t.test("summary (set sw false, set hw true): bpf's hardware lines add up to NET_DM's and devlink's", () => {
    const want = reported(sec('summary-before'), sec('summary-after'));
    t.diagnostic(`devlink counted ${[...want].map(([n, c]) => `${c} ${n}`).join(', ')}`);
    for (const [name, count] of want) assert.ok(count > 0, `no ${name} drops in the pulse`);
    const ours = sec('summary-ours');
    const theirs = sec('summary-theirs');
    for (const l of ours.filter((x) => DROP_LINE.test(x))) assert.match(l, /^\d+ drops at [a-z_]+ \[hardware\]$/);
    assert.deepEqual(summed(ours), want, ours.join('\n'));
    assert.deepEqual(summed(theirs), want, theirs.join('\n'));
    assert.ok(ours.includes('Got a stop message') && ours.includes('rc=0'), ours.join('\n'));
    // Everything else (prompts, settings, start and stop) is the same text, NET_DM's or ours on bpf.
    const rest = (lines: string[]) =>
      lines.filter((l) => !DROP_LINE.test(l) && !l.startsWith('Lost before delivery') && !l.startsWith('dropwatch: '));
    assert.deepEqual(rest(ours), rest(theirs));
  });

  await t.test("packet mode: trap, group, origin, input port, protocol and lengths as NET_DM's blocks", () => {
    const ours = sec('packet-ours');
    const theirs = sec('packet-theirs').filter((l) => l !== 'Waiting for deactivation ack...');
    assert.ok(ours.includes('Alert limit reached, deactivating!'), ours.join('\n'));
    const expected = TRAPS.flatMap(([trap, group]) => {
      const block = [
        `drop at: ${trap} (${group})`,
        'origin: hardware',
        `input port ifindex: ${ifindex}`,
        `input port name: ${ifname}`,
        'timestamp: T',
        'protocol: 0x800',
        `length: ${TRAP_FRAME_LEN}`,
        `original length: ${TRAP_FRAME_LEN}`,
      ].join('\n');
      return [block, block];
    });
    assert.deepEqual(blocks(ours), expected.sort(), ours.join('\n'));
    assert.deepEqual(blocks(ours), blocks(theirs), theirs.join('\n'));
    for (const l of ours.filter((x) => x.startsWith('flow: ')))
      assert.match(l, /^flow: IP 192\.0\.2\.1\.\d+ > 198\.51\.100\.1\.\d+: UDP, length 100$/);
  });

  await t.test('JSON packet mode: the trap fields, the input port and its namespace, schema-valid', () => {
    const packets = sec('packet-json')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(packets.length, 6, sec('packet-json').join('\n'));
    for (const p of packets) {
      assert.deepEqual(validateEvent(p), [], JSON.stringify(p));
      assert.equal(p['backend'], 'bpf');
      assert.equal(p['origin'], 'hardware');
      assert.equal(p['trapGroup'], GROUP.get(String(p['trap'])));
      assert.equal(p['ifindex'], ifindex);
      assert.equal(p['ifname'], ifname);
      assert.equal(p['pc'], null);
      assert.equal(p['origLength'], TRAP_FRAME_LEN);
      assert.equal(typeof p['netns'], 'number', 'the input port namespace');
      assert.equal(p['src'], '192.0.2.1');
      assert.equal(p['dst'], '198.51.100.1');
    }
  });

  await t.test('software and hardware at once, filtered to hardware: every trap report, no software drop', () => {
    const want = reported(sec('both-before'), sec('both-after'));
    const lines = sec('both-ours');
    assert.ok(
      lines.some((l) => l.startsWith('filter set: origin == hardware')),
      lines.join('\n'),
    );
    assert.deepEqual(summed(lines), want, lines.join('\n'));
    assert.ok(!lines.some((l) => l.includes('[software]')), lines.join('\n'));
    assert.ok(lines.includes('rc=0'), lines.join('\n'));
  });
});
