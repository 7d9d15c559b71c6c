// Symbol index against fixtures cut from the project machine's /proc/kallsyms, cross-checked with dropwatch's rescan method.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { KallsymsBuilder, parseKallsyms, type Resolved } from '../../src/symbols/index.js';
import { createRescanResolver } from '../../bench/rescan.js';
import { fixturePath } from '../helpers/paths.js';

const fixture = (name: string): string => readFileSync(fixturePath('symbols', name), 'latin1');

const cut = fixture('kallsyms-cut.txt');
const shuffled = fixture('kallsyms-cut-shuffled.txt');
const zeroed = fixture('kallsyms-cut-zeroed.txt');
const modules = fixture('modules-synthetic.txt');

/** Every aliased address and every `every`-th other one, each -1, +0, +1 and +0x10, plus edge values. */
function probes(text: string, every = 1): bigint[] {
  const seen = new Map<bigint, number>();
  for (const line of text.split('\n')) {
    const hex = line.split(/\s+/)[0];
    if (hex) seen.set(BigInt('0x' + hex), (seen.get(BigInt('0x' + hex)) ?? 0) + 1);
  }
  const out = new Set<bigint>([0n, 1n, 0xffffffff80000000n, 0xffffffffffffffffn]);
  let i = 0;
  for (const [a, n] of seen) {
    if (n === 1 && i++ % every !== 0) continue;
    for (const d of [-1n, 0n, 1n, 0x10n]) if (a + d >= 0n) out.add(a + d);
  }
  return [...out];
}

test('parses the real cut: counts, not hidden, core symbols', () => {
  const index = parseKallsyms(cut);
  assert.equal(index.lineCount, 5303);
  assert.equal(index.hidden, false);
  assert.ok(index.size < index.lineCount, 'aliases collapse');
  for (let i = 1; i < index.size; i++) assert.ok(index.addresses[i - 1]! < index.addresses[i]!);
  assert.deepEqual(index.resolve(0xffffffff820a7a70n + 0x4bcn), { symbol: '__udp4_lib_rcv', offset: 0x4bcn });
  assert.deepEqual(index.resolve(0xffffffff81e94f20n), { symbol: 'sk_skb_reason_drop', offset: 0n });
  assert.deepEqual(index.resolve(0xffffffff81e92630n + 0x33n), { symbol: 'kfree_skb_list_reason', offset: 0x33n });
  // __pfx_ padding symbols are real kallsyms lines, and dropwatch reports them like any other.
  assert.deepEqual(index.resolve(0xffffffff81e94f1fn), { symbol: '__pfx_sk_skb_reason_drop', offset: 0xfn });
});

test('same-address aliases resolve to the first in file order', () => {
  const index = parseKallsyms(cut);
  assert.deepEqual(index.resolve(0xffffffff81000000n), { symbol: 'srso_alias_untrain_ret', offset: 0n });
  assert.deepEqual(index.resolve(0xffffffff81000305n), { symbol: 'irq_entries_start', offset: 5n });
  assert.deepEqual(index.resolve(0xffffffff81200001n), { symbol: '__pfx_run_init_process', offset: 1n });
});

test('below the lowest symbol, zero and out-of-range addresses give null', () => {
  const index = parseKallsyms(cut);
  assert.equal(index.resolve(0xffffffff80ffffffn), null);
  assert.equal(index.resolve(0n), null);
  assert.equal(index.resolve(-1n), null);
  assert.equal(index.resolve(1n << 64n), null);
});

test('module lines: name without [mod], module reported separately', () => {
  const index = parseKallsyms(cut + modules);
  assert.deepEqual(index.resolve(0xffffffffc0201000n + 0x20n), {
    symbol: 'ftrace_trampoline',
    offset: 0x20n,
    module: '__builtin__ftrace',
  });
  assert.deepEqual(index.resolve(0xffffffffc0b01890n + 0x10n), { symbol: 'vxlan_rcv', offset: 0x10n, module: 'vxlan' });
  // Module sections are unsorted; aliases still pick the first line of the file.
  assert.deepEqual(index.resolve(0xffffffffc0a14004n), { symbol: 'udp_tunnel_init', offset: 4n, module: 'udp_tunnel' });
  assert.deepEqual(index.resolve(0xffffffffc0b03000n), {
    symbol: 'vxlan_cleanup_module',
    offset: 0n,
    module: 'vxlan',
  });
  assert.deepEqual(index.resolve(0xffffffffc0a12005n), {
    symbol: '__pfx_setup_udp_tunnel_sock',
    offset: 5n,
    module: 'udp_tunnel',
  });
});

test('shuffled input: same addresses and offsets as the sorted file', () => {
  const a = parseKallsyms(cut);
  const b = parseKallsyms(shuffled);
  assert.deepEqual([...b.addresses], [...a.addresses]);
  for (const pc of probes(cut)) {
    const ra = a.resolve(pc);
    const rb = b.resolve(pc);
    assert.equal(rb?.offset, ra?.offset, `offset at ${pc.toString(16)}`);
  }
});

test('kptr_restrict: an all-zero file is reported hidden and resolves nothing', () => {
  const index = parseKallsyms(zeroed);
  assert.equal(index.hidden, true);
  assert.equal(index.resolve(0xffffffff820a7a70n), null);
  assert.equal(index.resolve(0n), null);
  assert.equal(createRescanResolver(() => zeroed)(0xffffffff820a7a70n), null);
});

test('parsing in slices gives the same index as one pass', () => {
  const text = (modules + shuffled).trimEnd(); // no final newline either
  const whole = parseKallsyms(text);
  for (const slice of [1, 7, 1000]) {
    const b = new KallsymsBuilder();
    let pos = 0;
    let turns = 0;
    while (pos < text.length) {
      pos = b.addLines(text, pos, slice);
      turns++;
    }
    const sliced = b.build();
    assert.ok(turns >= Math.ceil(whole.lineCount / slice));
    assert.deepEqual([...sliced.addresses], [...whole.addresses]);
    assert.deepEqual(sliced.names, whole.names);
    assert.deepEqual([...sliced.moduleIds], [...whole.moduleIds]);
    assert.deepEqual(sliced.modules, whole.modules);
  }
});

test('lines fed from several texts: each name is read from its own text', () => {
  const text = modules + shuffled;
  const whole = parseKallsyms(text);
  const b = new KallsymsBuilder();
  // Cut at line starts into pieces, as the loader does with its reads.
  let start = 0;
  for (let cut = 7000; start < text.length; cut += 7000) {
    const end = cut >= text.length ? text.length : text.indexOf('\n', cut) + 1 || text.length;
    b.addLines(text.slice(start, end));
    start = end;
  }
  const pieces = b.build();
  assert.equal(pieces.lineCount, whole.lineCount);
  assert.deepEqual([...pieces.addresses], [...whole.addresses]);
  assert.deepEqual(pieces.names, whole.names);
  assert.deepEqual([...pieces.moduleIds], [...whole.moduleIds]);
  for (const pc of probes(text, 30)) assert.deepEqual(pieces.resolve(pc), whole.resolve(pc));
});

test('the index owns the arrays it was built from: no lines after build(), and it stays as built', () => {
  // Sized to the cut's 5,303 lines, so build() hands over the builder's own arrays rather than copies.
  const b = new KallsymsBuilder(5303);
  b.addLines(cut);
  const index = b.build();
  const before = [...index.addresses];
  assert.throws(() => b.addLines('ffffffff81000000 T late\n'), /after build/);
  assert.deepEqual([...index.addresses], before);
});

test('empty and malformed input', () => {
  const empty = parseKallsyms('');
  assert.equal(empty.size, 0);
  assert.equal(empty.hidden, false);
  assert.equal(empty.resolve(0xffffffff81000000n), null);
  const junk = parseKallsyms('garbage\n\nffffffff81000000\nxyz T name\nffffffff81000010 T good\n');
  assert.equal(junk.lineCount, 1);
  assert.deepEqual(junk.resolve(0xffffffff81000011n), { symbol: 'good', offset: 1n });
});

for (const [name, text] of [
  ['sorted cut', cut],
  ['shuffled cut', shuffled],
  ['cut + modules', cut + modules],
  ['modules first', modules + shuffled],
] as const) {
  test(`index and dropwatch's rescan method agree on every probe (${name})`, () => {
    const index = parseKallsyms(text);
    let reads = 0;
    const rescan = createRescanResolver(() => {
      reads++;
      return text;
    });
    const all = probes(text, 30);
    let unresolved = 0;
    for (const pc of all) {
      const expected: Resolved | null = rescan(pc);
      assert.deepEqual(index.resolve(pc), expected, `pc ${pc.toString(16)}`);
      if (!expected) unresolved++;
    }
    assert.ok(unresolved < 8);
    // Second pass answers from rescan's range cache (which never holds misses): still identical.
    const before = reads;
    for (const pc of all) assert.deepEqual(index.resolve(pc), rescan(pc));
    assert.equal(reads - before, unresolved);
  });
}

test('addresses outside the shared high half resolve as by a plain search (the bucket table edges)', () => {
  const text = [
    '00000000000a0000 t low_one',
    'f0ffffff81000000 T other_high',
    'ffffffff81000000 T first_kernel',
    'ffffffff81010000 T next_kernel',
    'ffffffffc0a00000 t in_module\t[mod]',
  ].join('\n');
  const index = parseKallsyms(text);
  const rescan = createRescanResolver(() => text);
  const pcs = [
    0xa0001n,
    0xf0ffffff81000001n,
    0xfffffffe00000000n,
    0xffffffff00000000n, // shared high half, below its first entry
    0xffffffff80ffffffn,
    0xffffffff81000000n,
    0xffffffff8100ffffn,
    0xffffffff81010000n,
    0xffffffffbfffffffn,
    0xffffffffc0a00010n,
    0xffffffffffffffffn, // beyond the last bucket
  ];
  for (const pc of pcs) assert.deepEqual(index.resolve(pc), rescan(pc), `pc ${pc.toString(16)}`);
  assert.equal(index.resolve(0xffffffff00000000n)?.symbol, 'other_high');
  assert.equal(index.resolve(0xffffffffffffffffn)?.symbol, 'in_module');
});
