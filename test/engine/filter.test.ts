// The filter's wiring to a backend: what `filter set:` echoes back, and what it refuses in a mode that cannot know a field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFilterControl, requireKernelFit, requireKnownFields } from '../../src/engine/filter.js';
import type { Backend, BackendCapabilities, KernelSets } from '../../src/backend/types.js';
import { parse } from '../../src/filter/index.js';
import { DropwatchError } from '../../src/errors/index.js';
import { sources } from '../../src/sources/index.js';
import { memoryBackend, SOFTWARE_ONLY } from '../helpers/backend.js';

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
  assert.equal(pass.packet(packet('veth499')), true);
  assert.equal(pass.packet(packet('veth500')), false);
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

// NET_DM as it is once packet alerts carry the decoded flow; tracefs, which never has the packet's bytes.
const NETDM_FLOW: BackendCapabilities = {
  ...capabilities,
  fields: { summary: ['trap'], packet: [...capabilities.fields.packet, 'flow'] },
};
const TRACEFS: BackendCapabilities = {
  ...SOFTWARE_ONLY,
  fields: { summary: ['reason', 'stack'], packet: ['reason', 'protocol', 'time', 'stack', 'process'] },
};

/** The one-line message of the DropwatchError `fn` rejects with (E_UNSUPPORTED). */
async function refusal(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof DropwatchError, String(err));
    assert.equal(err.code, 'E_UNSUPPORTED');
    assert.ok(!err.message.includes('\n'));
    return err.message;
  }
  return assert.fail('not refused');
}

test('a --filter on the flow in a mode that cannot know it is refused in one line, naming the field, mode and remedy', async () => {
  const netdm = memoryBackend(NETDM_FLOW, 'netdm');
  const udp9 = parse('dport == 9 && l4 == udp');
  const message = '--filter: l4 and dport are known only in packet mode, not in summary mode (add -m packet)';
  assert.equal(await refusal(() => requireKnownFields(netdm, udp9, 'summary', sources())), message);
  // Without -m the backend's own mode decides.
  assert.equal(await refusal(() => requireKnownFields(netdm, udp9, null, sources())), message);
  await requireKnownFields(netdm, udp9, 'packet', sources());
  await netdm.setConfig({ alertMode: 'packet' });
  await requireKnownFields(netdm, udp9, null, sources());
  // A field that decides nothing on its own is still refused: the filter would quietly mean something else.
  assert.equal(
    await refusal(() =>
      requireKnownFields(netdm, parse('reason == NO_SOCKET || dst in 10.0.0.0/8'), 'summary', sources()),
    ),
    '--filter: dst is known only in packet mode, not in summary mode (add -m packet)',
  );
  // No mode of this backend decodes packets.
  const tracefs = memoryBackend(TRACEFS);
  assert.equal(
    await refusal(() => requireKnownFields(tracefs, parse('src == ::1'), 'packet', sources())),
    "--filter: src is not known on the tracefs backend, which decodes no packets (NET_DM's or bpf's packet mode decodes packets: -b netdm -m packet or -b bpf -m packet)",
  );
  // Filters without flow fields, and no filter at all, pass as before.
  await requireKnownFields(tracefs, parse('reason == NO_SOCKET'), 'summary', sources());
  await requireKnownFields(tracefs, null, null, sources());
});

test('set filter on the flow: refused while the mode cannot know it, the filter in force kept; evaluated in packet mode', async () => {
  const netdm = memoryBackend(NETDM_FLOW, 'netdm');
  const control = createFilterControl(netdm, symbols);
  assert.equal(
    await control.compiler.apply('reason == NO_SOCKET'),
    'filter set: reason == NO_SOCKET (dropwatch: reason == NO_SOCKET)',
  );
  const before = control.predicate();
  assert.equal(
    await refusal(() => control.compiler.apply('dport == 9')),
    'filter not set: dport is known only in packet mode, not in summary mode (set alertmode packet first)',
  );
  assert.equal(control.describe(), 'reason == NO_SOCKET (dropwatch: reason == NO_SOCKET)');
  assert.equal(control.predicate(), before);
  await netdm.setConfig({ alertMode: 'packet' });
  assert.equal(
    await control.compiler.apply('dport == 9 && l4 == udp'),
    'filter set: dport == 9 && l4 == udp (dropwatch: dport == 9 && l4 == udp)',
  );
  const pass = control.predicate()!;
  const packet = (dport: number, l4: string) => ({
    origin: 'software' as const,
    symbol: '__udp4_lib_rcv+0x9a2/0xc30',
    flow: {
      l3: 'ipv4' as const,
      src: '127.0.0.1',
      dst: '127.0.0.1',
      l4,
      sport: 40000,
      dport,
      vlans: [],
      stopped: null,
    },
  });
  assert.deepEqual(
    [pass.packet(packet(9, 'udp')), pass.packet(packet(10, 'udp')), pass.packet(packet(9, 'tcp'))],
    [true, false, false],
  );
  // Clearing is never refused.
  await netdm.setConfig({ alertMode: 'summary' });
  assert.equal(await control.compiler.apply(null), 'filter cleared');
  // On tracefs there is no mode to switch to.
  const tracefs = createFilterControl(memoryBackend(TRACEFS), symbols);
  assert.equal(
    await refusal(() => tracefs.compiler.apply('l3 == ipv6')),
    'filter not set: l3 is not known on the tracefs backend, which decodes no packets',
  );
});

test('switching to a mode the filter cannot be evaluated in, or starting in one, is refused with the way out', async () => {
  const netdm = memoryBackend(NETDM_FLOW, 'netdm');
  await netdm.setConfig({ alertMode: 'packet' });
  const control = createFilterControl(netdm, symbols);
  await control.compiler.apply('dst in 127.0.0.0/8');
  assert.equal(await control.compiler.refuseMode!('packet'), null);
  assert.equal(
    await control.compiler.refuseMode!('summary'),
    'alert mode not set: the filter in force reads a flow field: dst is known only in packet mode, not in summary mode (set filter none first)',
  );
  assert.equal(await control.compiler.refuseStart!(), null);
  // Another client switched the kernel's mode (NET_DM's is shared).
  await netdm.setConfig({ alertMode: 'summary' });
  assert.equal(
    await control.compiler.refuseStart!(),
    'monitoring not started: the filter in force reads a flow field: dst is known only in packet mode, not in summary mode (set alertmode packet, or set filter none)',
  );
  await control.compiler.apply(null);
  assert.equal(await control.compiler.refuseStart!(), null);
  assert.equal(await control.compiler.refuseMode!('summary'), null);
  // From the command line it cannot be cleared at the prompt, and the message says so.
  await netdm.setConfig({ alertMode: 'packet' });
  const fromCli = createFilterControl(netdm, symbols, parse('sport == 53'));
  assert.equal(
    await fromCli.compiler.refuseMode!('summary'),
    'alert mode not set: the --filter of this run reads a flow field: sport is known only in packet mode, not in summary mode (it stays for the run)',
  );
});

/** tracefs as it is: the protocol in packet mode only, and a kernel filter that takes at most `max` characters. */
function withKernelFilter(max: number, installed: (string | null)[]): BackendCapabilities {
  return {
    ...TRACEFS,
    fields: { summary: ['reason', 'stack'], packet: ['reason', 'protocol', 'time', 'stack', 'process'] },
    reasons: new Map([[3, 'NO_SOCKET']]),
    kernelFilter: {
      syntax: 'ftrace-event',
      reasons: new Map([[3, 'NO_SOCKET']]),
      maxLength: max,
      apply: async (text) => {
        installed.push(text);
      },
    },
  };
}

/** `protocol == 1 || protocol == 3 || …`: nothing folds, so it is as long as it looks. */
const oddProtocols = (n: number) => Array.from({ length: n }, (_, i) => `protocol == ${2 * i + 1}`).join(' || ');

test('a filter too long for the kernel, on a field only the kernel can test in this mode, is refused before anything is set', async () => {
  const installed: (string | null)[] = [];
  const tracefs = memoryBackend(withKernelFilter(100, installed));
  const long = parse(oddProtocols(20));
  const cli = await refusal(() => requireKernelFit(tracefs, long, 'summary'));
  assert.match(
    cli,
    /^--filter: too long for the kernel's filter \(\d+ characters, at most 100\), and protocol is not reported by the tracefs backend in summary mode, so dropwatch cannot test it instead \(shorten it, or add -m packet\)$/,
  );
  assert.equal(await refusal(() => requireKernelFit(tracefs, long, null)), cli);
  await requireKernelFit(tracefs, long, 'packet');
  await requireKernelFit(tracefs, parse(oddProtocols(3)), 'summary');
  // At the prompt: refused, the filter in force kept and nothing installed.
  const control = createFilterControl(tracefs, symbols);
  assert.match(await control.compiler.apply('reason == NO_SOCKET'), /^filter set: /);
  assert.match(
    await refusal(() => control.compiler.apply(oddProtocols(20))),
    /^filter not set: too long for the kernel's filter .* \(shorten it, or set alertmode packet first\)$/,
  );
  assert.deepEqual(installed, ['reason == 3']);
  // In packet mode dropwatch tests it; switching back to summary mode, or starting in it, is refused.
  await tracefs.setConfig({ alertMode: 'packet' });
  assert.match(await control.compiler.apply(oddProtocols(20)), /^filter set: .*\(dropwatch: /);
  assert.equal(control.predicate() !== null, true);
  assert.match(
    (await control.compiler.refuseMode!('summary')) ?? '',
    /^alert mode not set: the filter in force is too long for the kernel's filter .* \(set filter none first\)$/,
  );
  assert.equal(await control.compiler.refuseStart!(), null);
  // The --filter of a -m packet run is applied for packet mode, whatever the backend's mode before -m.
  await tracefs.setConfig({ alertMode: 'summary' });
  const fromCli = createFilterControl(tracefs, symbols, long);
  assert.match(await fromCli.applyExpr(null, 'packet'), /^filter set: /);
});

/** bpf as it is: device, namespace and protocol known to its kernel filter, sets of at most `max` values. */
function withKernelSets(max: number, installed: (KernelSets | null)[]): BackendCapabilities {
  return {
    ...SOFTWARE_ONLY,
    fields: {
      summary: ['reason', 'device', 'netns', 'process'],
      packet: ['reason', 'protocol', 'time', 'device', 'netns', 'payload', 'flow', 'process'],
    },
    reasons: new Map([[3, 'NO_SOCKET']]),
    kernelFilter: {
      syntax: 'field-sets',
      reasons: new Map([[3, 'NO_SOCKET']]),
      maxValues: max,
      apply: async (sets) => {
        installed.push(sets);
      },
    },
  };
}

test('a field-set kernel filter: the sets installed, the echo says where each part runs, overflow refused in values', async () => {
  const installed: (KernelSets | null)[] = [];
  const bpf = memoryBackend(withKernelSets(4, installed), 'bpf');
  const control = createFilterControl(bpf, symbols);
  assert.equal(
    await control.compiler.apply('netns == 4026532173 && reason == NO_SOCKET && (ifindex == 2 || symbol =~ /udp/)'),
    'filter set: netns == 4026532173 && reason == NO_SOCKET && (ifindex == 2 || symbol =~ /udp/) ' +
      '(kernel: netns == 4026532173 && reason == NO_SOCKET; dropwatch: ifindex == 2 || symbol =~ /udp/)',
  );
  assert.deepEqual(installed.at(-1), {
    none: false,
    fields: { netns: { allow: true, values: [4026532173] }, reason: { allow: true, values: [3] } },
  });
  // A summary's places carry device and namespace, so dropwatch tests those itself; protocol only the kernel can.
  await control.compiler.apply('ifname == lo');
  assert.equal(await control.compiler.check!(), null);
  const five = Array.from({ length: 5 }, (_, i) => `protocol == ${i + 1}`).join(' || ');
  assert.match(
    await refusal(() => requireKernelFit(bpf, parse(five), 'summary')),
    /^--filter: too long for the kernel's filter \(5 values, at most 4\), and protocol is not reported by the bpf backend in summary mode, so dropwatch cannot test it instead \(shorten it, or add -m packet\)$/,
  );
  await requireKernelFit(bpf, parse(five), 'packet');
  await control.compiler.apply(null);
  assert.equal(installed.at(-1), null);
});
