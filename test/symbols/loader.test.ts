// Loader: never rejects, reports hidden/unavailable, caches by address; and one check against this machine's live /proc/kallsyms.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  cachedResolver,
  hiddenCause,
  loadSymbolTable,
  parseKallsyms,
  readAddressVisibility,
  type Resolved,
} from '../../src/symbols/index.js';
import { DropwatchError } from '../../src/errors/index.js';
import { fixturePath } from '../helpers/paths.js';

const fixture = (name: string): string => readFileSync(fixturePath('symbols', name), 'latin1');

test('loads through an injected reader', async () => {
  const text = fixture('kallsyms-cut.txt');
  const table = await loadSymbolTable({ path: 'x', readFile: async () => text });
  assert.equal(table.status, 'ok');
  assert.deepEqual(table.resolve(0xffffffff820a7a70n + 0x10n), { symbol: '__udp4_lib_rcv', offset: 0x10n });
});

test('hidden addresses: status hidden, nothing resolves', async () => {
  const text = fixture('kallsyms-cut-zeroed.txt');
  const table = await loadSymbolTable({ readFile: async () => text });
  assert.equal(table.status, 'hidden');
  assert.equal(table.resolve(0xffffffff820a7a70n), null);
});

test('hidden addresses: the cause is named, kptr_restrict=2 apart from a missing CAP_SYSLOG', async () => {
  const text = fixture('kallsyms-cut-zeroed.txt');
  const table = await loadSymbolTable({
    readFile: async () => text,
    visibility: () => ({ kptrRestrict: 1, perfEventParanoid: 2, capSyslog: false }),
  });
  assert.equal(table.cause, 'this process lacks CAP_SYSLOG (kernel.kptr_restrict=1)');
  assert.equal(
    hiddenCause({ kptrRestrict: 2, perfEventParanoid: 2, capSyslog: true }),
    'kernel.kptr_restrict=2 hides them from every process, root included',
  );
  assert.equal(
    hiddenCause({ kptrRestrict: 0, perfEventParanoid: 2, capSyslog: false }),
    'this process lacks CAP_SYSLOG (kernel.kptr_restrict=0, kernel.perf_event_paranoid=2)',
  );
  assert.equal(
    hiddenCause({ kptrRestrict: 1, perfEventParanoid: 2, capSyslog: true }),
    'CAP_SYSLOG is not held in the initial user namespace (a container?), which kernel.kptr_restrict=1 requires',
  );
  assert.equal(
    hiddenCause({ kptrRestrict: null, perfEventParanoid: null, capSyslog: null }),
    'kernel.kptr_restrict, or CAP_SYSLOG missing',
  );
  const ok = await loadSymbolTable({ readFile: async () => fixture('kallsyms-cut.txt') });
  assert.equal(ok.cause, undefined);
});

test('readAddressVisibility reads the sysctls and CAP_SYSLOG from CapEff', () => {
  const files: Record<string, string> = {
    '/proc/sys/kernel/kptr_restrict': '1\n',
    '/proc/sys/kernel/perf_event_paranoid': '3\n',
    '/proc/self/status': 'Name:\tnode\nCapEff:\t000001fbfeffffff\nCapBnd:\t000001ffffffffff\n',
  };
  assert.deepEqual(
    readAddressVisibility((p) => files[p]!),
    { kptrRestrict: 1, perfEventParanoid: 3, capSyslog: false },
  );
  files['/proc/self/status'] = 'CapEff:\t000001ffffffffff\n';
  assert.equal(readAddressVisibility((p) => files[p]!).capSyslog, true);
  assert.deepEqual(
    readAddressVisibility(() => {
      throw new Error('EACCES');
    }),
    { kptrRestrict: null, perfEventParanoid: null, capSyslog: null },
  );
});

test('a failed read becomes status unavailable with an E_IO error, never a rejection', async () => {
  const table = await loadSymbolTable({ path: '/nonexistent/kallsyms' });
  assert.equal(table.status, 'unavailable');
  assert.ok(table.error instanceof DropwatchError);
  assert.equal(table.error.code, 'E_IO');
  assert.match(table.error.message, /^cannot read \/nonexistent\/kallsyms: /);
  assert.equal(table.resolve(0xffffffff81000000n), null);
  const thrown = await loadSymbolTable({
    readFile: () => {
      throw new Error('sync throw');
    },
  });
  assert.equal(thrown.status, 'unavailable');
  assert.match(thrown.error?.message ?? '', /sync throw/);
});

test('cache: one lookup per distinct address, bounded', () => {
  const seen: bigint[] = [];
  const lookup = (pc: bigint): Resolved | null => {
    seen.push(pc);
    return pc > 10n ? { symbol: 's', offset: pc - 10n } : null;
  };
  const r = cachedResolver(lookup, 2);
  assert.deepEqual(r(12n), { symbol: 's', offset: 2n });
  assert.deepEqual(r(12n), { symbol: 's', offset: 2n });
  assert.equal(r(3n), null);
  assert.equal(r(3n), null);
  assert.deepEqual(seen, [12n, 3n]);
  r(20n); // over the limit: cache cleared, then refilled
  r(12n);
  assert.deepEqual(seen, [12n, 3n, 20n, 12n]);
});

test('live /proc/kallsyms: a known symbol +0x10 resolves to symbol+0x10', async (t) => {
  let text: string;
  try {
    text = readFileSync('/proc/kallsyms', 'latin1');
  } catch {
    t.skip('no /proc/kallsyms');
    return;
  }
  const line = text.split('\n').find((l) => / [Tt] __udp4_lib_rcv$/.test(l));
  if (!line) {
    t.skip('__udp4_lib_rcv not in this kernel');
    return;
  }
  const addr = BigInt('0x' + line.slice(0, line.indexOf(' ')));
  if (addr === 0n) {
    t.skip('kallsyms addresses hidden for this user');
    return;
  }
  const t0 = performance.now();
  const index = parseKallsyms(text);
  const buildMs = performance.now() - t0;
  assert.deepEqual(index.resolve(addr + 0x10n), { symbol: '__udp4_lib_rcv', offset: 0x10n });

  const table = await loadSymbolTable();
  assert.equal(table.status, 'ok');
  assert.deepEqual(table.resolve(addr + 0x10n), { symbol: '__udp4_lib_rcv', offset: 0x10n });

  // Throughput of uncached lookups over spread-out addresses.
  const pcs = Array.from({ length: 1 << 16 }, (_, i) => index.addresses[(i * 7919) % index.size]! + 3n);
  const t1 = performance.now();
  let hits = 0;
  for (const pc of pcs) if (index.resolve(pc)) hits++;
  const lookupMs = performance.now() - t1;
  assert.equal(hits, pcs.length);
  t.diagnostic(
    `lines ${index.lineCount}, unique addresses ${index.size}, build ${buildMs.toFixed(1)} ms, ` +
      `${Math.round(pcs.length / (lookupMs / 1000))} uncached lookups/s`,
  );
});

test('reading the file in chunks: lines split across reads parse as in one text', async () => {
  // Over two 256 KiB reads, unsorted, with module lines and no final newline.
  const text = (
    fixture('kallsyms-cut.txt') +
    fixture('modules-synthetic.txt') +
    fixture('kallsyms-cut-shuffled.txt')
  ).trimEnd();
  const dir = mkdtempSync(join(tmpdir(), 'kallsyms-'));
  try {
    const path = join(dir, 'kallsyms');
    writeFileSync(path, text, 'latin1');
    const table = await loadSymbolTable({ path });
    const whole = parseKallsyms(text);
    assert.equal(table.status, 'ok');
    assert.ok(table.index);
    assert.equal(table.index.lineCount, whole.lineCount);
    assert.deepEqual([...table.index.addresses], [...whole.addresses]);
    assert.deepEqual(table.index.names, whole.names);
    assert.deepEqual([...table.index.moduleIds], [...whole.moduleIds]);
    assert.deepEqual(table.index.modules, whole.modules);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
