// Pushed-down filters on the real kernel: tracefs accepts each one and evaluates it as our user-space evaluator does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, pushdown } from '../../src/filter/index.js';
import { reasonTable } from './helpers.js';
import { canRunKernelTests, TRACEFS } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const FORMAT = join(TRACEFS, 'events/skb/kfree_skb/format');
const skip = canRunKernelTests();
let ns: Netns | null = null;

before(() => {
  if (!skip) ns = new Netns();
});
after(() => ns?.delete());

test('the kernel accepts every pushed-down filter, and reads it back unchanged', { skip }, () => {
  const reasons = reasonTable(readFileSync(FORMAT, 'utf8'));
  const dir = join(TRACEFS, 'instances', `dwfilter-test-${process.pid}`);
  mkdirSync(dir);
  try {
    const filterFile = join(dir, 'events/skb/kfree_skb/filter');
    const sources = [
      'reason == NO_SOCKET',
      'reason != NO_SOCKET && protocol == ip',
      '(reason == NO_SOCKET || reason == TCP_CSUM) && protocol != arp',
      '!(reason == NO_SOCKET && protocol == ipv6)',
      'reason =~ /^TCP_/ && symbol =~ /tcp/',
      'reason !~ /CSUM|^IP_/',
      'origin == software && (reason =~ /^(SOCKET|TCP_MD5)/ || protocol == 0x86dd)',
      [...reasons.values()]
        .slice(0, 60)
        .map((n) => `reason != ${n}`)
        .join(' && '),
      // Past a page as written: values on one field fold into ranges.
      [...Array.from({ length: 299 }, (_, i) => `protocol == ${i}`), 'protocol == ipv6'].join(' || '),
      Array.from({ length: 400 }, (_, i) => `protocol != ${i + 10}`).join(' && '),
    ];
    for (const src of sources) {
      const { kernel } = pushdown(parse(src), reasons);
      assert.ok(kernel !== null, `nothing pushed down for ${src}`);
      writeFileSync(filterFile, kernel);
      assert.equal(readFileSync(filterFile, 'utf8').trim(), kernel, src);
    }
    // The check has teeth: the kernel does refuse a filter it cannot parse.
    assert.throws(() => writeFileSync(filterFile, 'reason == NO_SOCKET'), { code: 'EINVAL' });
    writeFileSync(filterFile, '0');
    assert.equal(readFileSync(filterFile, 'utf8').trim(), 'none');
  } finally {
    rmdirSync(dir);
  }
  assert.equal(existsSync(dir), false);
});

test(
  'the kernel evaluates pushed-down filters as the user-space evaluator does (UDP to a closed port)',
  { skip },
  async () => {
    const reasons = reasonTable(readFileSync(FORMAT, 'utf8'));
    const dir = join(TRACEFS, 'instances', `dwfilter-test-${process.pid}`);
    mkdirSync(dir);
    try {
      const event = join(dir, 'events/skb/kfree_skb');
      // [expression, whether our IPv4 NO_SOCKET drops pass it]
      const cases: [string, boolean][] = [
        ['reason == NO_SOCKET && protocol == ip', true],
        ['reason == NO_SOCKET && protocol == ipv6', false],
        ['reason =~ /^NO_SOCK/ && protocol != arp', true],
        ['!(reason == NO_SOCKET || reason == NOT_SPECIFIED)', false],
      ];
      for (const [src, passes] of cases) {
        const { kernel } = pushdown(parse(src), reasons);
        assert.ok(kernel !== null);
        writeFileSync(join(event, 'filter'), kernel);
        writeFileSync(join(dir, 'trace'), '');
        writeFileSync(join(event, 'enable'), '1');
        await ns!.sendUdp('127.0.0.1', 5);
        await sleep(50);
        writeFileSync(join(event, 'enable'), '0');
        const ours = readFileSync(join(dir, 'trace'), 'utf8')
          .split('\n')
          .filter((l) => l.includes('kfree_skb:') && l.includes('__udp4_lib_rcv'));
        if (passes) {
          assert.ok(ours.length >= 5, `${src} (${kernel}): saw ${ours.length} of 5 drops`);
          for (const l of ours) assert.match(l, /protocol=2048 .*reason: NO_SOCKET/);
        } else assert.equal(ours.length, 0, `${src} (${kernel}) let through: ${ours[0]}`);
      }
    } finally {
      rmdirSync(dir);
    }
  },
);
