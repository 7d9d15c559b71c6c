// The filter's wiring to a backend: what `filter set:` echoes back, on a backend without a kernel filter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFilterControl } from '../../src/cli/filter.js';
import type { Backend, BackendCapabilities } from '../../src/backend/types.js';
import { parse } from '../../src/filter/index.js';

const capabilities: BackendCapabilities = {
  modes: ['summary', 'packet'],
  settings: { trunc: true, queue: true, hw: true },
  fields: { summary: ['trap'], packet: ['reason', 'symbol', 'protocol', 'time', 'device', 'payload', 'trap'] },
  reasons: null,
  kernelFilter: null,
};
let mode: 'summary' | 'packet' = 'summary';
const backend = {
  name: 'netdm',
  capabilities,
  getConfig: async () => ({ alertMode: mode, truncLen: 0, queueLen: 1000 }),
} as unknown as Backend;
let missing: string | null = null;
const symbols = { lookup: () => null, ready: async () => {}, missing: () => missing };

const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

test('the echo escapes every control and bidi character a pattern or value holds', async () => {
  const control = createFilterControl(backend, symbols);
  for (const text of [
    'symbol =~ /udp\u202e4pdu/',
    'ifname == "eth\u20660\u2069"',
    'symbol =~ /a\u200bb\u200fc\u061c/',
    'ifname == "x\u0085y\u009bz"',
    'symbol =~ /\u{e0041}/u',
  ]) {
    const line = await control.compiler.apply(text);
    assert.match(line, /^filter set: /);
    assert.doesNotMatch(line, UNPRINTABLE, JSON.stringify(line));
  }
  assert.equal(
    await control.compiler.apply('symbol =~ /udp\u202e4/'),
    'filter set: symbol =~ /udp\\u202e4/ (dropwatch: symbol =~ /udp\\u202e4/)',
  );
});

test('a long filter is shortened in the echo; the whole of it still applies', async () => {
  const control = createFilterControl(backend, symbols);
  const names = Array.from({ length: 500 }, (_, i) => `ifname == "veth${i}"`);
  const line = await control.compiler.apply(names.join(' || '));
  assert.ok(line.length < 600, `${line.length} characters`);
  assert.match(line, /^filter set: ifname == veth0 \|\| .*… \(dropwatch: ifname == veth0 \|\| .*…\)$/);
  const pass = control.predicate()!;
  const packet = (name: string) => ({ origin: 'software' as const, pc: 1n, inPort: { name } });
  assert.equal(pass(packet('veth499')), true);
  assert.equal(pass(packet('veth500')), false);
  assert.ok(parse(names.join(' || ')));
});

test('a filter that can never match, or lets everything through, is said in one line; others say nothing', async (t) => {
  t.after(() => {
    mode = 'summary';
    missing = null;
  });
  const control = createFilterControl(backend, symbols);
  const check = async (text: string) => {
    await control.compiler.apply(text);
    return control.compiler.check!();
  };
  // NET_DM's summary alerts carry no reason; its packet alerts do.
  assert.equal(
    await check('reason == NO_SOCKET'),
    'dropwatch: this filter can never match: reason is not reported by the netdm backend in summary mode (packet mode reports it)',
  );
  assert.equal(
    await check('!(ifname == eth0)'),
    'dropwatch: this filter lets every drop through: ifname is not reported by the netdm backend in summary mode (packet mode reports it)',
  );
  assert.equal(await check('reason == NO_SOCKET || symbol =~ /udp/'), null);
  mode = 'packet';
  assert.equal(await check('reason == NO_SOCKET'), null);
  // Hidden addresses: summary entries cannot be named, while NET_DM packet alerts name their symbol themselves.
  missing = 'while kernel addresses are hidden';
  assert.equal(await check('symbol =~ /udp/'), null);
  mode = 'summary';
  assert.equal(
    await check('symbol =~ /udp/'),
    'dropwatch: this filter can never match: symbol is unknown while kernel addresses are hidden',
  );
  await control.compiler.apply(null);
  assert.equal(await control.compiler.check!(), null);
});
