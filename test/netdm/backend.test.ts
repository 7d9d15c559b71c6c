// NetdmBackend without NET_DM on the host: opening says so the way dropwatch does, and over a scripted transport
// answering with the guest kernel's captured bytes its events, losses, stats and stop are checked without root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { DropwatchError } from '../../src/errors/index.js';
import type { BackendEvent } from '../../src/backend/types.js';
import {
  decodeStatsNew,
  LOST_SOCKET,
  LOST_UNDECODABLE,
  NET_DM_CMD_CONFIG_GET,
  NET_DM_CMD_START,
  NET_DM_CMD_STOP,
  NetdmBackend,
  openNetdmBackend,
  openNetdmClient,
  NETDM_MISSING_MESSAGE,
} from '../../src/netdm/index.js';
import { openBackend } from '../../src/sources/index.js';
import { loadNative } from '../../src/netlink/index.js';
import { fixtureBytes, fixtureMessage } from './fixtures.js';
import { NetdmKernel, ticks, watch } from './transport.js';

function hostHasNetdm(): boolean {
  return existsSync('/sys/module/drop_monitor');
}

test("open on a kernel without NET_DM: E_NETDM_MISSING with dropwatch's sentence; auto falls back", async (t) => {
  try {
    loadNative();
  } catch (e) {
    t.skip(`netlink addon not built: ${(e as Error).message}`);
    return;
  }
  if (hostHasNetdm()) {
    t.skip('this host has NET_DM (the qemu tests cover it)');
    return;
  }
  await assert.rejects(openNetdmBackend(), (e: unknown) => {
    assert.ok(e instanceof DropwatchError);
    assert.equal(e.code, 'E_NETDM_MISSING');
    assert.equal(e.message, NETDM_MISSING_MESSAGE);
    assert.equal(e.message, "Unable to find NET_DM family, dropwatch can't work");
    return true;
  });
  await assert.rejects(openBackend('netdm', { notice: () => undefined }), { code: 'E_NETDM_MISSING' });
});

async function scriptedBackend(): Promise<{ kernel: NetdmKernel; backend: NetdmBackend; events: BackendEvent[] }> {
  const kernel = new NetdmKernel();
  const backend = NetdmBackend.over(await openNetdmClient({ missingMessage: '' }, kernel.transport));
  const events: BackendEvent[] = [];
  backend.onEvent((e) => events.push(e));
  return { kernel, backend, events };
}

const describe = (e: BackendEvent): string =>
  e.kind === 'summary'
    ? `summary ${e.entries.map((x) => x.count).join('+')}`
    : e.kind === 'lost'
      ? `lost ${e.count} ${e.where}`
      : e.kind;

test('scripted kernel: one summary event per receive batch, packets in order, then the losses; stats carry the totals', async () => {
  const { kernel, backend, events } = await scriptedBackend();
  await backend.start({ sw: true, hw: false });
  kernel.alert('alert-summary-0.bin');
  kernel.alert('alert-summary-0.bin');
  kernel.alert('packet-alert-1.bin');
  // A captured summary ALERT cut inside its attribute: the netlink header holds, the NET_DM decoder refuses it.
  const cut = fixtureBytes('alert-summary-0.bin').slice(0, 32);
  new DataView(cut.buffer).setUint32(0, cut.length, true);
  kernel.data.multicast(cut, kernel.eventsGroup);
  kernel.data.drop(2);
  await ticks();
  assert.deepEqual(events.map(describe), [
    'summary 100+100',
    'packet',
    `lost 1 ${LOST_UNDECODABLE}`,
    `lost 2 ${LOST_SOCKET}`,
  ]);

  kernel.statsReply = 'stats-new-summary-running.bin';
  assert.deepEqual(await backend.getStats(), {
    ...decodeStatsNew(fixtureMessage('stats-new-summary-running.bin')),
    lost: [
      { where: LOST_SOCKET, count: 2 },
      { where: LOST_UNDECODABLE, count: 1 },
    ],
  });
  await backend.close();
});

test('scripted kernel: stop() delivers what the kernel sent before its ack, then leaves `events`; nothing after', async () => {
  const { kernel, backend, events } = await scriptedBackend();
  await backend.start({ sw: true, hw: false });
  assert.ok(backend.isMonitoring);
  kernel.data.autoWake = false;
  kernel.hooks.set(NET_DM_CMD_STOP, () => {
    kernel.alert('packet-alert-0.bin');
    kernel.data.drop(1);
    kernel.alert('packet-alert-2.bin');
  });
  const stopping = backend.stop();
  const state = watch(stopping);
  await ticks();
  assert.equal(state.settled, false);
  assert.deepEqual(events, []);
  kernel.data.wake();
  await stopping;
  assert.deepEqual(events.map(describe), ['packet', 'packet', `lost 1 ${LOST_SOCKET}`]);
  assert.equal(backend.isMonitoring, false);
  assert.equal(kernel.data.groups.size, 0, 'left the group');
  assert.equal(kernel.data.referenced, false);
  assert.equal(kernel.alert(), 0);
  kernel.data.wake();
  assert.equal(events.length, 3);
  // Not monitoring: close sends no STOP.
  await backend.close();
  assert.deepEqual(kernel.commands(kernel.control), [NET_DM_CMD_START, NET_DM_CMD_STOP]);
  assert.ok(kernel.control.isClosed && kernel.data.isClosed);
});

test('scripted kernel: close() while monitoring stops the kernel and drains before closing the sockets', async () => {
  const { kernel, backend, events } = await scriptedBackend();
  await backend.start({ sw: true, hw: false });
  kernel.hooks.set(NET_DM_CMD_STOP, () => {
    kernel.alert('packet-alert-0.bin');
  });
  await backend.close();
  assert.equal(kernel.monitoring, false);
  assert.deepEqual(kernel.commands(kernel.data), [NET_DM_CMD_CONFIG_GET]);
  assert.deepEqual(events.map(describe), ['packet']);
  assert.ok(kernel.control.isClosed && kernel.data.isClosed);
  await assert.rejects(backend.getStats(), { code: 'E_STATE' });
});

test('scripted kernel: packet events carry the flow decoded from their payload, and packet mode lists the flow', async () => {
  const { kernel, backend, events } = await scriptedBackend();
  assert.ok(backend.capabilities.fields.packet.includes('flow'));
  await backend.start({ sw: true, hw: false });
  kernel.alert('packet-alert-2.bin');
  kernel.alert('packet-alert-trunc20-0.bin');
  await ticks();
  const flows = events.map((e) => (e.kind === 'packet' ? e.packet.flow : undefined));
  assert.equal(flows.length, 2);
  const [whole, cut] = flows;
  assert.deepEqual(
    [whole?.l3, whole?.src, whole?.dst, whole?.l4, whole?.dport],
    ['ipv4', '127.0.0.1', '127.0.0.1', 'udp', 9],
  );
  assert.equal(whole?.length, 'dropwatch-333'.length);
  assert.equal(cut?.stopped, 'truncated in the IPv4 header');
  await backend.close();
});
