// The netlink endpoint without a kernel: requests, replies, multicast and losses over a scripted pipe fed the bytes a
// real kernel sent (test/fixtures/netlink). The same endpoint over the addon: socket.int.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { DropwatchError, KernelError } from '../../src/errors/index.js';
import {
  GENL_ID_CTRL,
  getFamily,
  getFamilyRequestBody,
  listFamilies,
  NETLINK_GENERIC,
  NetlinkEndpoint,
  type LostCounts,
  type NlMessage,
  type ReceivedMessage,
} from '../../src/netlink/index.js';
import { captured } from './fixtures.js';
import { answer, ScriptedPipe, ScriptedTransport } from './scripted.js';

/** A transport whose kernel holds every request until the test answers it. */
function holding(): { transport: ScriptedTransport; held: NlMessage[] } {
  const held: NlMessage[] = [];
  return { transport: new ScriptedTransport((m) => void held.push(m)), held };
}

/** Queues a capture's datagrams on the pipe as the kernel's answer to `request`. */
function reply(pipe: ScriptedPipe, capture: string, request: NlMessage): void {
  for (const d of captured(capture).datagrams) pipe.enqueue(answer(d, request, pipe.portId));
}

test('replies are matched to requests by sequence number, in any order; a dump ends at NLMSG_DONE', async () => {
  const { transport, held } = holding();
  const endpoint = transport.open(NETLINK_GENERIC);
  const pipe = transport.sockets[0]!;
  assert.equal(pipe.referenced, false, 'an idle socket does not hold the process');
  const nlctrl = getFamily(endpoint, 'nlctrl');
  const ethtool = getFamily(endpoint, 'ethtool');
  assert.equal(pipe.referenced, true, 'a pending request does');
  reply(pipe, 'getfamily-ethtool', held[1]!);
  reply(pipe, 'getfamily-nlctrl', held[0]!);
  assert.equal((await nlctrl).id, GENL_ID_CTRL);
  assert.equal((await ethtool).name, 'ethtool');
  assert.deepEqual(
    held.map((m) => m.header.seq),
    [1, 2],
  );

  const all = listFamilies(endpoint);
  reply(pipe, 'getfamily-dump', held[2]!);
  assert.ok((await all).some((f) => f.name === 'nlctrl' && f.id === GENL_ID_CTRL));
  assert.equal(pipe.referenced, false);

  // A reply nobody waits for (its request was answered already) is an unsolicited message.
  const stray: ReceivedMessage[] = [];
  endpoint.onMessages((ms) => stray.push(...ms));
  reply(pipe, 'getfamily-nlctrl', held[0]!);
  await tick();
  assert.deepEqual(
    stray.map((m) => [m.header.seq, m.group]),
    [
      [1, 0],
      [1, 0],
    ],
  );
  endpoint.close();
  assert.ok(pipe.isClosed);
});

test('a kernel error rejects with its errno and extended-ACK text; a timeout and close reject what is pending', async () => {
  const { transport, held } = holding();
  const endpoint = transport.open(NETLINK_GENERIC, { timeoutMs: 30 });
  const pipe = transport.sockets[0]!;
  const refused = endpoint.request(GENL_ID_CTRL, getFamilyRequestBody('x'));
  reply(pipe, 'getfamily-policy-error', held[0]!);
  await assert.rejects(refused, (e: unknown) => {
    assert.ok(e instanceof KernelError);
    assert.equal(e.errno, 22);
    assert.equal(e.extack, 'Attribute failed policy validation');
    return true;
  });

  await assert.rejects(endpoint.request(GENL_ID_CTRL, getFamilyRequestBody('nlctrl')), {
    code: 'E_IO',
    message: `netlink request (type ${GENL_ID_CTRL}, seq 2) got no reply in 30 ms`,
  });
  const pending = endpoint.request(GENL_ID_CTRL, getFamilyRequestBody('nlctrl'), { timeoutMs: 0 });
  endpoint.close();
  await assert.rejects(pending, { code: 'E_STATE', message: 'netlink socket closed with a request pending' });
  await assert.rejects(endpoint.request(GENL_ID_CTRL, getFamilyRequestBody('nlctrl')), { code: 'E_STATE' });
  assert.throws(() => endpoint.addMembership(1), { code: 'E_STATE' });
});

test("losses follow each batch's messages, counted from the kernel's counter across its 32-bit wrap", async () => {
  const pipe = new ScriptedPipe(NETLINK_GENERIC, {}, 4000, () => undefined);
  // Opened with the counter two short of wrapping.
  const endpoint = new NetlinkEndpoint(pipe, { protocol: NETLINK_GENERIC, portId: 4000, drops: 0xfffffffe });
  const log: string[] = [];
  const totals: LostCounts[] = [];
  endpoint.onMessages((ms) => log.push(`messages ${ms.map((m) => m.group).join(',')}`));
  endpoint.onLost((delta, total) => {
    log.push(`lost ${delta.dropped}+${delta.truncated}`);
    totals.push(total);
  });
  endpoint.addMembership(5);
  assert.deepEqual([...pipe.groups], [5]);
  const alert = captured('getfamily-nlctrl').datagrams[0]!;
  pipe.multicast(alert, 5);
  pipe.drop(3);
  pipe.truncate(1);
  await tick();
  assert.deepEqual(log, ['messages 5', 'lost 5+1']);

  // Counted by the kernel, not yet read by a batch: lost() has it now, the listener with the next batch.
  pipe.autoWake = false;
  pipe.drop(2);
  assert.deepEqual(endpoint.lost(), { dropped: 7, enobufs: 0, truncated: 1 });
  assert.equal(log.length, 2);
  pipe.wake();
  assert.equal(log.at(-1), 'lost 2+0');
  assert.deepEqual(totals.at(-1), { dropped: 7, enobufs: 0, truncated: 1 });
  endpoint.close();
});

test('undecodable datagrams are errors the socket survives; a failed receive loop rejects what is pending', async () => {
  const { transport, held } = holding();
  const endpoint = transport.open(NETLINK_GENERIC);
  const pipe = transport.sockets[0]!;
  const cut = captured('getfamily-nlctrl').datagrams[0]!.subarray(0, 20);
  pipe.enqueue(cut);
  await tick();
  assert.equal(endpoint.decodeErrors, 1, 'counted while no one listens');
  const errors: DropwatchError[] = [];
  endpoint.onError((e) => errors.push(e));
  pipe.enqueue(cut);
  const nlctrl = getFamily(endpoint, 'nlctrl');
  reply(pipe, 'getfamily-nlctrl', held[0]!);
  assert.equal((await nlctrl).id, GENL_ID_CTRL);
  assert.deepEqual(
    errors.map((e) => e.code),
    ['E_DECODE'],
  );

  const pending = endpoint.request(GENL_ID_CTRL, getFamilyRequestBody('nlctrl'));
  pipe.fail('ENOBUFS', 105);
  await assert.rejects(pending, (e: unknown) => {
    assert.ok(e instanceof KernelError);
    assert.equal(e.errno, 105);
    assert.equal(e.message, 'netlink recvmsg: No buffer space available');
    return true;
  });
  assert.equal(errors.at(-1)?.message, 'netlink recvmsg: No buffer space available');
  // Nothing is read after the failure.
  reply(pipe, 'getfamily-nlctrl', held[1]!);
  await tick();
  assert.equal(pipe.queued, 2);
  endpoint.close();
});
