// NetdmClient without a kernel: the refusal shape both tools print from, the missing-family error on this host (it has
// no NET_DM), and the protocol over a scripted transport answering with the guest kernel's captured bytes. The loss
// ledger and the drain at STOP: client-ledger.test.ts; against drop_monitor itself: the qemu suites.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { DropwatchError, KernelError } from '../../src/errors/index.js';
import {
  ALREADY_MONITORING_HINT,
  encodeStop,
  NET_DM_CMD_ALERT,
  NET_DM_CMD_CONFIG,
  NET_DM_CMD_CONFIG_GET,
  NET_DM_CMD_PACKET_ALERT,
  NET_DM_CMD_START,
  NET_DM_CMD_STATS_GET,
  NET_DM_CMD_STOP,
  NetdmClient,
  NetdmRefusal,
  netdmCommand,
  NO_EVENTS_GROUP_MESSAGE,
  openNetdmClient,
} from '../../src/netdm/index.js';
import {
  decodeGenl,
  decodeNlMsgs,
  encodeNlMsg,
  GenlFamilyNotFoundError,
  loadNative,
  NETLINK_GENERIC,
  NLM_F_REQUEST,
} from '../../src/netlink/index.js';
import { fixtureBytes, fixtureMessage } from './fixtures.js';
import { NetdmKernel, recordListener, ticks } from './transport.js';

test('a refusal with a hint names the request and appends the hint to the kernel text', () => {
  const kernel = new KernelError(11, 'Resource temporarily unavailable', 'drop_monitor: Trace state already set');
  const r = new NetdmRefusal('start', kernel, ALREADY_MONITORING_HINT);
  assert.ok(r instanceof KernelError);
  assert.equal(r.errno, 11);
  assert.equal(r.message, 'NET_DM start: Resource temporarily unavailable');
  assert.equal(r.extack, `drop_monitor: Trace state already set; ${ALREADY_MONITORING_HINT}`);
  assert.equal(r.kernelText, 'drop_monitor: Trace state already set');
  assert.equal(r.hint, ALREADY_MONITORING_HINT);
  // Without kernel text the hint stands alone.
  assert.equal(new NetdmRefusal('config', new KernelError(1, 'Operation not permitted'), 'h').extack, 'h');
});

test("a refusal without a hint is the kernel's error unchanged", () => {
  const kernel = new KernelError(16, 'Device or resource busy', 'drop_monitor: Cannot configure drop monitor');
  const r = new NetdmRefusal('config', kernel, undefined);
  assert.equal(r.message, 'Device or resource busy');
  assert.equal(r.extack, 'drop_monitor: Cannot configure drop monitor');
  assert.equal(r.hint, undefined);
});

test("open on a kernel without NET_DM: E_NETDM_MISSING in the caller's words", async (t) => {
  try {
    loadNative();
  } catch (e) {
    t.skip(`netlink addon not built: ${(e as Error).message}`);
    return;
  }
  if (existsSync('/sys/module/drop_monitor')) {
    t.skip('this host has NET_DM (the qemu tests cover it)');
    return;
  }
  await assert.rejects(openNetdmClient({ missingMessage: 'no NET_DM here' }), (e: unknown) => {
    assert.ok(e instanceof DropwatchError);
    assert.equal(e.code, 'E_NETDM_MISSING');
    assert.equal(e.message, 'no NET_DM here');
    return true;
  });
});

test('open resolves NET_DM over the transport from the captured GETFAMILY reply; a missing family is E_NETDM_MISSING', async () => {
  const kernel = new NetdmKernel();
  const client = await openNetdmClient({ missingMessage: 'no NET_DM here', timeoutMs: 1234 }, kernel.transport);
  assert.equal(client.familyId, 32);
  assert.equal(client.groupId, 1);
  // dwdump's first pcap record: the kernel's reply as it came (here readdressed to our request, payload untouched).
  assert.deepEqual(client.family.raw.subarray(16), fixtureMessage('ctrl-getfamily-reply.bin').payload);
  assert.equal(kernel.transport.sockets.length, 1, 'only the control socket until listen()');
  assert.equal(kernel.control.protocol, NETLINK_GENERIC);
  assert.equal(kernel.control.options.timeoutMs, 1234);
  assert.equal(client.portId, kernel.control.portId);
  client.close();
  assert.ok(client.isClosed);

  const missing = new NetdmKernel();
  missing.registered = false;
  await assert.rejects(openNetdmClient({ missingMessage: 'no NET_DM here' }, missing.transport), (e: unknown) => {
    assert.ok(e instanceof DropwatchError);
    assert.equal(e.code, 'E_NETDM_MISSING');
    assert.equal(e.message, 'no NET_DM here');
    assert.ok(e.cause instanceof GenlFamilyNotFoundError);
    return true;
  });
  assert.ok(missing.control.isClosed, 'the control socket is not left open');
});

test('a family without the events group is refused at construction', () => {
  const kernel = new NetdmKernel();
  const family = { ...kernel.family, mcastGroups: new Map<string, number>() };
  const control = kernel.transport.open(NETLINK_GENERIC);
  assert.throws(() => new NetdmClient(kernel.transport, control, family), {
    code: 'E_NETDM_MISSING',
    message: NO_EVENTS_GROUP_MESSAGE,
  });
});

test('requests: CONFIG_GET and STATS_GET decode the kernel replies; refusals carry the kernel text and the hints', async () => {
  const kernel = new NetdmKernel();
  const client = await openNetdmClient(
    { missingMessage: '', remedies: { busy: 'try -p', hardware: 'try -o sw' } },
    kernel.transport,
  );
  kernel.configReply = 'config-new-packet.bin';
  assert.deepEqual(await client.getConfig(), { alertMode: 'packet', truncLen: 0, queueLen: 1000 });
  kernel.statsReply = 'stats-new-tail-drops.bin';
  assert.deepEqual(await client.getStats(), { software: { tailDropped: 199n }, hardware: { tailDropped: 0n } });
  await client.setConfig({ alertMode: 'summary' });

  await client.start({ sw: true, hw: false });
  assert.deepEqual(client.started, { sw: true, hw: false });
  await assert.rejects(client.start({ sw: true, hw: false }), (e: unknown) => {
    assert.ok(e instanceof NetdmRefusal);
    assert.equal(e.request, 'start');
    assert.equal(e.errno, 11);
    assert.equal(e.kernelText, 'drop_monitor: Trace state already set to requested state');
    assert.equal(e.hint, ALREADY_MONITORING_HINT);
    return true;
  });
  assert.deepEqual(client.started, { sw: true, hw: false }, 'a refused START changes nothing');
  await assert.rejects(client.setConfig({ alertMode: 'packet' }), (e: unknown) => {
    assert.ok(e instanceof NetdmRefusal);
    assert.equal(e.errno, 16);
    assert.equal(e.kernelText, 'drop_monitor: Cannot configure drop monitor during monitoring');
    assert.equal(e.hint, 'try -p');
    return true;
  });
  // Not listening: STOP is one request, no drain.
  await client.stop();
  assert.equal(client.started, null);
  assert.deepEqual(kernel.commands(kernel.control), [
    NET_DM_CMD_CONFIG_GET,
    NET_DM_CMD_STATS_GET,
    NET_DM_CMD_CONFIG,
    NET_DM_CMD_START,
    NET_DM_CMD_START,
    NET_DM_CMD_CONFIG,
    NET_DM_CMD_STOP,
  ]);
  assert.equal(kernel.transport.sockets.length, 1);
  client.close();
});

test('listen, join, leave: the data socket as dwdump has it, and a membership that keeps the process alive', async () => {
  const kernel = new NetdmKernel();
  const client = await openNetdmClient({ missingMessage: '' }, kernel.transport);
  const rec = recordListener();
  assert.throws(() => client.join(), { code: 'E_STATE' });
  client.listen(4 << 20, rec.listener);
  assert.throws(() => client.listen(4 << 20, rec.listener), { code: 'E_STATE' });
  const data = kernel.data;
  assert.equal(data.options.rcvbuf, 4 << 20);
  assert.equal(data.options.noEnobufs, true);
  assert.equal(data.options.timeoutMs, 0);
  assert.ok((data.options.scratchSize ?? 0) > 65_535, 'no NET_DM message is ever cut');
  assert.equal(client.portId, data.portId);
  assert.equal(kernel.alert(), 0, 'nothing arrives before the join');

  client.join();
  assert.deepEqual([...data.groups], [1]);
  assert.equal(data.referenced, true);
  kernel.alert('alert-summary-0.bin');
  kernel.alert('packet-alert-0.bin');
  // A unicast on the data socket that answers no drain marker is not an alert.
  data.enqueue(fixtureBytes('config-new-default.bin'));
  await ticks();
  assert.deepEqual(rec.log, ['alerts 2']);
  assert.deepEqual(
    rec.alerts.map((m) => netdmCommand(m)),
    [NET_DM_CMD_ALERT, NET_DM_CMD_PACKET_ALERT],
  );

  client.leave();
  assert.equal(data.groups.size, 0);
  assert.equal(data.referenced, false);
  assert.equal(kernel.alert(), 0);
  client.close();
});

test('stopSync: a STOP with the started flags and no ACK asked, sent before it returns; nothing when not started', async () => {
  const kernel = new NetdmKernel();
  const client = await openNetdmClient({ missingMessage: '' }, kernel.transport);
  client.stopSync();
  assert.equal(kernel.control.sent.length, 1, 'only the GETFAMILY');
  await client.start({ sw: false, hw: true });
  client.stopSync();
  assert.equal(client.started, null);
  assert.equal(kernel.monitoring, false);
  const stop = kernel.control.sent.at(-1)!;
  assert.equal(netdmCommand(stop), NET_DM_CMD_STOP);
  assert.equal(stop.header.flags, NLM_F_REQUEST);
  assert.deepEqual(
    decodeGenl(stop).attrs,
    decodeGenl(decodeNlMsgs(encodeNlMsg({ type: 32 }, encodeStop({ hw: true })))[0]!).attrs,
  );
  client.close();
  client.stopSync();
});
