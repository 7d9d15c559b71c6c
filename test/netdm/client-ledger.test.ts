// NetdmClient's loss ledger and its drain at STOP, over a scripted transport answering with the guest kernel's bytes:
// no root, no kernel. The qemu suites check the same accounting end to end against drop_monitor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NET_DM_CMD_CONFIG_GET, NET_DM_CMD_STOP } from '../../src/netdm/codec.js';
import {
  LOST_SOCKET,
  LOST_UNDECODABLE,
  LOST_UNREAD,
  NetdmRefusal,
  openNetdmClient,
  type NetdmClient,
} from '../../src/netdm/client.js';
import { answer } from '../netlink/scripted.js';
import { fixtureBytes } from './fixtures.js';
import { NetdmKernel, recordListener, ticks, watch } from './transport.js';

const ALERTS = ['packet-alert-0.bin', 'packet-alert-1.bin', 'packet-alert-2.bin'];

/** A client listening, joined and started (software drops), over a fresh scripted kernel. */
async function monitoring(): Promise<{
  kernel: NetdmKernel;
  client: NetdmClient;
  rec: ReturnType<typeof recordListener>;
}> {
  const kernel = new NetdmKernel();
  const client = await openNetdmClient({ missingMessage: 'no NET_DM' }, kernel.transport);
  const rec = recordListener();
  client.listen(1 << 20, rec.listener);
  client.join();
  await client.start({ sw: true, hw: false });
  return { kernel, client, rec };
}

const sum = (lost: [number, string][], where: string): number =>
  lost.filter(([, w]) => w === where).reduce((a, [n]) => a + n, 0);

test('overflows on the data socket are alerts lost: each counted once, as the batch that notices it reports it', async () => {
  const { kernel, client, rec } = await monitoring();
  const data = kernel.data;
  assert.equal(data.options.noEnobufs, true, 'an overflow must not silence the socket');

  kernel.alert(ALERTS[0]);
  data.drop(5);
  kernel.alert(ALERTS[1]);
  await ticks();
  assert.deepEqual(rec.log, ['alerts 2', `lost 5 ${LOST_SOCKET}`]);

  // Counted by the kernel, not yet seen by a batch: lost() reads the counter now; the listener hears once, later.
  data.autoWake = false;
  data.drop(3);
  assert.equal(client.lost().socket, 8);
  assert.equal(rec.lost.length, 1);
  // A datagram cut for our buffer is an alert lost too.
  data.truncate(1);
  data.wake();
  assert.deepEqual(rec.lost, [
    [5, LOST_SOCKET],
    [4, LOST_SOCKET],
  ]);
  assert.deepEqual(client.lost(), { socket: 9, undecodable: 0, unread: 0 });

  data.autoWake = true;
  await client.stop();
  // The stop's final report finds nothing new: every loss was told exactly once.
  assert.equal(sum(rec.lost, LOST_SOCKET), 9);
  assert.equal(rec.lost.length, 2);
  assert.deepEqual(client.lost(), { socket: 9, undecodable: 0, unread: 0 });
  client.close();
});

test('drops the kernel counted before STOP that no batch reported reach the listener before stop() resolves, once', async () => {
  const { kernel, client, rec } = await monitoring();
  kernel.data.autoWake = false;
  kernel.data.drop(4);
  const stopping = client.stop();
  const state = watch(stopping);
  await ticks();
  assert.equal(state.settled, false, 'stop waits for the drain marker behind the queue');
  kernel.data.wake();
  await stopping;
  assert.deepEqual(rec.lost, [[4, LOST_SOCKET]]);
  assert.equal(client.lost().socket, 4);
  client.close();
});

test('a reader that never catches up: stop() gives up on the drain in time and still reports the drops counted', async () => {
  const { kernel, client, rec } = await monitoring();
  kernel.data.autoWake = false;
  kernel.data.drop(3);
  const t0 = Date.now();
  await client.stop();
  assert.ok(Date.now() - t0 >= 900, 'the drain waited for its marker before giving up');
  assert.deepEqual(rec.lost, [[3, LOST_SOCKET]]);
  assert.equal(client.lost().socket, 3);
  client.close();
});

test('a listener slower than the queue at stop: past the drain budget the rest is read and counted lost, not dropped', async () => {
  const { kernel, client, rec } = await monitoring();
  // More alerts than a slow listener gets through in the drain's budget: the queue a packet-mode storm leaves behind.
  const queued = 40 * 256;
  kernel.hooks.set(NET_DM_CMD_STOP, () => {
    for (let i = 0; i < queued; i++) kernel.alert(ALERTS[i % ALERTS.length]);
  });
  const slow = rec.listener.alerts.bind(rec.listener);
  // 50 ms a batch (the main thread busy elsewhere): 40 batches would take 2 s.
  rec.listener.alerts = (ms) => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    slow(ms);
  };
  await client.stop();
  const unread = sum(rec.lost, LOST_UNREAD);
  assert.ok(rec.alerts.length > 0 && unread > 0, `delivered ${rec.alerts.length}, counted ${unread}`);
  // Every alert queued before the STOP's ack either reached the listener or was counted: none is left unsaid.
  assert.equal(rec.alerts.length + unread, queued);
  assert.deepEqual(client.lost(), { socket: 0, undecodable: 0, unread });
  assert.equal(kernel.data.queued, 0);
  // Told once, at the end of the drain, after the last alert the listener got.
  assert.deepEqual(rec.lost, [[unread, LOST_UNREAD]]);
  assert.equal(rec.log.at(-1), `lost ${unread} ${LOST_UNREAD}`);
  // The budget counts from the STOP: the listener got fewer batches than the 40 it would take 2 s to handle.
  assert.ok(rec.alerts.length < queued, 'the drain gave up before the slow listener got through the queue');
  client.close();
});

test('while stopped a drop is no alert: the drain marker it cost is asked again and nothing is counted lost', async () => {
  const { kernel, client, rec } = await monitoring();
  let markers = 0;
  kernel.hooks.set(NET_DM_CMD_CONFIG_GET, (_m, socket) => {
    // The first marker finds the data socket's queue full: the kernel drops its reply.
    if (socket === kernel.data && markers++ === 0) {
      socket.drop(1);
      return [];
    }
    return undefined;
  });
  await client.stop();
  assert.equal(markers, 2, 'a dropped marker is sent again');
  assert.deepEqual(client.lost(), { socket: 0, undecodable: 0, unread: 0 });
  assert.deepEqual(rec.lost, []);

  // Started again, the ledger counts from where the kernel's counter is, less what the stopped time cost.
  await client.start({ sw: true, hw: false });
  kernel.data.drop(2);
  await ticks();
  assert.deepEqual(rec.lost, [[2, LOST_SOCKET]]);
  assert.equal(client.lost().socket, 2);
  await client.stop();
  client.close();
});

test('alerts sent before STOP was acked reach the listener before stop() resolves; the drain waits for nothing after', async () => {
  const { kernel, client, rec } = await monitoring();
  kernel.alert(ALERTS[0]);
  await ticks();
  assert.deepEqual(rec.log, ['alerts 1']);

  // The reader is behind: what the kernel queues stays queued until the test wakes the data socket.
  kernel.data.autoWake = false;
  kernel.hooks.set(NET_DM_CMD_STOP, () => {
    // Inside the STOP's sendto(): alerts already on their way reach the queue before the kernel acks.
    for (const a of ALERTS) kernel.alert(a);
  });
  const stopping = client.stop();
  const state = watch(stopping);
  void stopping.then(() => rec.log.push('stopped'));
  await ticks();
  assert.equal(state.settled, false, 'the ack alone does not end stop()');
  assert.deepEqual(rec.log, ['alerts 1']);
  assert.deepEqual(kernel.commands(kernel.data), [NET_DM_CMD_CONFIG_GET], 'one drain marker, behind the alerts');

  kernel.data.wake();
  // Something queued after the marker (another session's traffic) is not waited for.
  kernel.alert(ALERTS[0]);
  await stopping;
  assert.deepEqual(rec.log, ['alerts 1', 'alerts 3', 'stopped']);
  assert.deepEqual(
    rec.alerts.slice(1).map((m) => Buffer.from(m.raw).toString('hex')),
    ALERTS.map((a) => Buffer.from(fixtureBytes(a)).toString('hex')),
  );
  assert.equal(kernel.data.queued, 1);
  assert.equal(client.started, null);
  assert.equal(kernel.monitoring, false);
  client.close();
});

test('STOP answered EAGAIN counts as done, as in dropwatch; any other refusal leaves the client started', async () => {
  const { kernel, client } = await monitoring();
  // Kernels before 6.1 answer a STOP when not monitoring with EAGAIN: the captured EAGAIN, readdressed.
  kernel.hooks.set(NET_DM_CMD_STOP, (m, s) => {
    kernel.monitoring = false;
    return [answer(fixtureBytes('err-start-eagain-extack.bin'), m, s.portId)];
  });
  await client.stop();
  assert.equal(client.started, null);
  assert.deepEqual(kernel.commands(kernel.data), [NET_DM_CMD_CONFIG_GET], 'still drained');

  await client.start({ sw: true, hw: true });
  kernel.hooks.set(NET_DM_CMD_STOP, (m, s) => [answer(fixtureBytes('err-config-einval-extack.bin'), m, s.portId)]);
  await assert.rejects(client.stop(), (e: unknown) => {
    assert.ok(e instanceof NetdmRefusal);
    assert.equal(e.errno, 22);
    assert.equal(e.request, 'stop');
    assert.equal(e.kernelText, 'drop_monitor: Invalid alert mode');
    return true;
  });
  // Still started: the exit hook's synchronous STOP is left to try, with the flags START had.
  assert.deepEqual(client.started, { sw: true, hw: true });
  kernel.hooks.delete(NET_DM_CMD_STOP);
  client.stopSync();
  assert.equal(client.started, null);
  assert.equal(kernel.monitoring, false);
  client.close();
});

test('undecodable datagrams and alerts the listener cannot use are counted apart from socket losses', async () => {
  const { kernel, client, rec } = await monitoring();
  // A captured alert cut short: its nlmsg_len runs past the datagram, so the netlink decoder refuses it.
  kernel.data.enqueue(fixtureBytes(ALERTS[0]!).subarray(0, 100), kernel.eventsGroup);
  kernel.alert(ALERTS[1]);
  await ticks();
  assert.deepEqual(rec.log, [`lost 1 ${LOST_UNDECODABLE}`, 'alerts 1']);
  client.discard(2);
  client.discard(0);
  assert.deepEqual(client.lost(), { socket: 0, undecodable: 3, unread: 0 });
  assert.deepEqual(rec.lost, [
    [1, LOST_UNDECODABLE],
    [2, LOST_UNDECODABLE],
  ]);
  assert.equal(rec.errors.length, 0);

  // A receive loop that fails is the listener's error; the client does not call it a loss.
  kernel.data.fail('ENOBUFS', 105);
  await ticks();
  assert.deepEqual(
    rec.errors.map((e) => e.message),
    ['netlink recvmsg: No buffer space available'],
  );
  assert.equal(client.lost().undecodable, 3);
  client.close();
});

test('close() ends a drain that is still waiting (false) and rejects pending requests', async () => {
  const { kernel, client } = await monitoring();
  kernel.data.autoWake = false;
  kernel.control.autoWake = false;
  const drained = client.drain(60_000);
  const stats = client.getStats();
  await ticks();
  client.close();
  assert.equal(await drained, false);
  await assert.rejects(stats, { code: 'E_STATE' });
  assert.ok(kernel.control.isClosed && kernel.data.isClosed);
});
