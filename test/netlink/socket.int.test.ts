// The socket wrapper against this machine's kernel: nlctrl requests, kernel errors, and multicast queue overflow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import {
  encodeNlMsg,
  getFamily,
  GenlFamilyNotFoundError,
  GENL_ID_CTRL,
  getFamilyRequestBody,
  listFamilies,
  NETLINK_GENERIC,
  NETLINK_USERSOCK,
  NetlinkSocket,
  SO_RCVBUF,
  SOL_SOCKET,
  genlBody,
  nlaString,
  CTRL_CMD_GETFAMILY,
  CTRL_ATTR_FAMILY_NAME,
  decodeFamily,
  genlRequest,
  type ReceivedMessage,
  type LostCounts,
} from '../../src/netlink/index.js';
import { splitBatch } from '../../src/netlink/socket.js';
import { DropwatchError, KernelError } from '../../src/errors/index.js';
import { procNetlinkDrops } from './proc.js';

test('resolves nlctrl and lists families', async () => {
  const s = NetlinkSocket.open(NETLINK_GENERIC);
  try {
    const f = await getFamily(s, 'nlctrl');
    assert.equal(f.id, GENL_ID_CTRL);
    assert.equal(f.version, 2);
    assert.equal(f.mcastGroups.get('notify'), 0x10);
    assert.equal(new DataView(f.raw.buffer, f.raw.byteOffset).getUint32(12, true), s.portId);
    const all = await listFamilies(s);
    assert.ok(all.some((x) => x.name === 'nlctrl' && x.id === GENL_ID_CTRL));
    // concurrent requests are matched by sequence number
    const [a, b] = await Promise.all([getFamily(s, 'nlctrl'), getFamily(s, all.at(-1)!.name)]);
    assert.equal(a.name, 'nlctrl');
    assert.equal(b.id, all.at(-1)!.id);
    // the generic helper: GETFAMILY to nlctrl through genlRequest
    const [g] = await genlRequest(s, f, CTRL_CMD_GETFAMILY, [nlaString(CTRL_ATTR_FAMILY_NAME, 'nlctrl')]);
    assert.equal(g!.cmd, 1);
    assert.equal(decodeFamily(g!.message).id, GENL_ID_CTRL);
    assert.deepEqual(s.lost(), { dropped: 0, enobufs: 0, truncated: 0 });
  } finally {
    s.close();
  }
});

test('a missing family is a typed error (NET_DM is not in this kernel)', async () => {
  const s = NetlinkSocket.open(NETLINK_GENERIC);
  try {
    await assert.rejects(getFamily(s, 'NET_DM'), (e: unknown) => {
      assert.ok(e instanceof GenlFamilyNotFoundError);
      assert.ok(e instanceof KernelError);
      assert.equal(e.errno, 2);
      assert.equal(e.family, 'NET_DM');
      return true;
    });
  } finally {
    s.close();
  }
});

test('a kernel error rejects with KernelError carrying the extended-ACK text', async () => {
  const s = NetlinkSocket.open(NETLINK_GENERIC);
  try {
    const body = genlBody(CTRL_CMD_GETFAMILY, 1, [nlaString(CTRL_ATTR_FAMILY_NAME, 'x'.repeat(40))]);
    await assert.rejects(s.request(GENL_ID_CTRL, body), (e: unknown) => {
      assert.ok(e instanceof KernelError);
      assert.equal(e.code, 'E_KERNEL');
      assert.equal(e.errno, 22);
      assert.equal(e.extack, 'Attribute failed policy validation');
      return true;
    });
    // the socket is still usable afterwards
    assert.equal((await getFamily(s, 'nlctrl')).id, GENL_ID_CTRL);
  } finally {
    s.close();
  }
});

test('syscall failures become KernelError with errno; a closed socket is E_STATE', async () => {
  assert.throws(
    () => NetlinkSocket.open(99),
    (e: unknown) => e instanceof KernelError && e.errno === 93,
  );
  const s = NetlinkSocket.open(NETLINK_GENERIC);
  assert.throws(
    () => s.setOption(270, 9999, 1),
    (e: unknown) => e instanceof KernelError && e.errno === 92,
  );
  const pending = s.request(GENL_ID_CTRL, getFamilyRequestBody('nlctrl'));
  s.close();
  s.close();
  // the reply was produced inside sendto(), but close() comes first: the request is settled, not left hanging
  await assert.rejects(pending, (e: unknown) => e instanceof DropwatchError && e.code === 'E_STATE');
  await assert.rejects(s.request(GENL_ID_CTRL, getFamilyRequestBody('nlctrl')), { code: 'E_STATE' });
  assert.throws(() => s.addMembership(1), { code: 'E_STATE' });
});

// sendto() with a group also unicasts to the given port id; port 0 is USERSOCK's absent kernel socket, so after the
// broadcast has been delivered the kernel answers ECONNREFUSED.
function multicast(tx: NetlinkSocket, bytes: Uint8Array, group: number): void {
  try {
    tx.sendRaw(bytes, 0, 1 << (group - 1));
  } catch (e) {
    if (!(e instanceof KernelError && e.errno === 111)) throw e;
  }
}

interface Flood {
  sent: number;
  received: number;
  lost: LostCounts;
  procDrops: number | undefined;
  seqs: number[];
  batches: number;
}

// Floods a USERSOCK multicast group at a receiver with a tiny queue; bursts are sent in one JS turn, so the receiver
// cannot read in between and the kernel must drop.
async function flood(opts: { noEnobufs: boolean; bursts: number; perBurst: number; size: number }): Promise<Flood> {
  const group = 3;
  const rx = NetlinkSocket.open(NETLINK_USERSOCK, { rcvbuf: 4096, noEnobufs: opts.noEnobufs });
  const tx = NetlinkSocket.open(NETLINK_USERSOCK);
  try {
    rx.addMembership(group);
    const seqs: number[] = [];
    let batches = 0;
    let lostEvents: LostCounts = { dropped: 0, enobufs: 0, truncated: 0 };
    rx.onMessages((msgs: ReceivedMessage[]) => {
      batches++;
      for (const m of msgs) {
        assert.equal(m.group, group);
        assert.equal(m.header.type, 0x20);
        seqs.push(m.header.seq);
      }
    });
    rx.onLost((_delta, total) => {
      lostEvents = total;
    });
    const payload = new Uint8Array(opts.size).fill(0x5a);
    let sent = 0;
    for (let b = 0; b < opts.bursts; b++) {
      for (let i = 0; i < opts.perBurst; i++) {
        multicast(tx, encodeNlMsg({ type: 0x20, seq: ++sent }, payload), group);
      }
      await tick();
    }
    const deadline = Date.now() + 5000;
    while (seqs.length + rx.lost().dropped < sent && Date.now() < deadline) await tick();
    const lost = rx.lost();
    assert.deepEqual(lostEvents, lost, 'the lost events add up to lost()');
    return {
      sent,
      received: seqs.length,
      lost,
      procDrops: procNetlinkDrops(NETLINK_USERSOCK, rx.portId),
      seqs,
      batches,
    };
  } finally {
    rx.close();
    tx.close();
  }
}

for (const noEnobufs of [true, false]) {
  test(`multicast overflow (NETLINK_NO_ENOBUFS ${noEnobufs ? 'on' : 'off'}): survives, sent = received + dropped`, async () => {
    // 150 x 1 KiB in one go is what aborts the `netlink` npm package; then a longer storm with pauses.
    for (const shape of [
      { bursts: 1, perBurst: 150, size: 1024 },
      { bursts: 20, perBurst: 500, size: 1024 },
    ]) {
      const r = await flood({ noEnobufs, ...shape });
      console.log(
        `noEnobufs=${noEnobufs} ${shape.bursts}x${shape.perBurst}x${shape.size}B: sent ${r.sent} received ${r.received} ` +
          `dropped ${r.lost.dropped} (proc ${r.procDrops}) enobufs ${r.lost.enobufs} in ${r.batches} batches`,
      );
      assert.ok(r.lost.dropped > 0, 'the tiny queue must overflow');
      assert.equal(r.received + r.lost.dropped, r.sent);
      assert.equal(r.procDrops, r.lost.dropped, '/proc/net/netlink Drops agrees');
      assert.deepEqual(
        [...r.seqs].sort((a, b) => a - b),
        r.seqs,
        'in order, no duplicates',
      );
      assert.equal(new Set(r.seqs).size, r.seqs.length);
      if (noEnobufs) assert.equal(r.lost.enobufs, 0);
      else assert.ok(r.lost.enobufs > 0, 'ENOBUFS is reported and survived');
    }
  });
}

test('an oversized datagram is counted as truncated and the socket goes on', async () => {
  const rx = NetlinkSocket.open(NETLINK_USERSOCK, { scratchSize: 4096 });
  const tx = NetlinkSocket.open(NETLINK_USERSOCK);
  try {
    rx.setOption(SOL_SOCKET, SO_RCVBUF, 1 << 20);
    const got: number[] = [];
    rx.onMessages((msgs) => got.push(...msgs.map((m) => m.header.len)));
    tx.sendRaw(encodeNlMsg({ type: 0x20, seq: 1 }, new Uint8Array(8000)), rx.portId);
    tx.sendRaw(encodeNlMsg({ type: 0x20, seq: 2 }, new Uint8Array(100)), rx.portId);
    // two messages in one datagram
    tx.sendRaw(
      new Uint8Array([
        ...encodeNlMsg({ type: 0x20, seq: 3 }, new Uint8Array(5)),
        ...encodeNlMsg({ type: 0x21, seq: 4 }),
      ]),
      rx.portId,
    );
    const deadline = Date.now() + 3000;
    while (got.length < 3 && Date.now() < deadline) await tick();
    assert.deepEqual(got, [116, 21, 16]);
    assert.deepEqual(rx.lost(), { dropped: 0, enobufs: 0, truncated: 1 });
  } finally {
    rx.close();
    tx.close();
  }
});

test('datagrams read in one wake-up arrive byte for byte, each its own view, whatever their sizes', async () => {
  const rx = NetlinkSocket.open(NETLINK_USERSOCK);
  const tx = NetlinkSocket.open(NETLINK_USERSOCK);
  try {
    rx.setOption(SOL_SOCKET, SO_RCVBUF, 1 << 20);
    const sent = [0, 4, 1000, 8, 60_000, 12].map((n, i) =>
      encodeNlMsg(
        { type: 0x20, seq: i + 1 },
        new Uint8Array(n).map((_, j) => (j * 7 + i) & 0xff),
      ),
    );
    const got: Uint8Array[] = [];
    let batches = 0;
    rx.onMessages((msgs) => {
      batches++;
      got.push(...msgs.map((m) => Uint8Array.from(m.raw)));
    });
    // Sizes are multiples of 4, so raw (exactly nlmsg_len bytes) is the whole message sent. Sent before the loop runs,
    // so they queue and are read together.
    for (const m of sent) tx.sendRaw(m, rx.portId);
    const deadline = Date.now() + 3000;
    while (got.length < sent.length && Date.now() < deadline) await tick();
    assert.deepEqual(got, sent);
    assert.equal(batches, 1);
  } finally {
    rx.close();
    tx.close();
  }
});

test('splitBatch: one Buffer and its ends become one view per datagram', () => {
  const batch = Buffer.from([1, 2, 3, 4, 5, 6]);
  assert.deepEqual(
    splitBatch(batch, [2, 2, 6]).map((d) => [...d]),
    [[1, 2], [], [3, 4, 5, 6]],
  );
});

test('undecodable datagrams go to the error listener, not to the process', async () => {
  const rx = NetlinkSocket.open(NETLINK_USERSOCK);
  const tx = NetlinkSocket.open(NETLINK_USERSOCK);
  try {
    const errors: DropwatchError[] = [];
    const got: number[] = [];
    rx.onError((e) => errors.push(e));
    rx.onMessages((msgs) => got.push(...msgs.map((m) => m.header.seq)));
    tx.sendRaw(new Uint8Array([1, 2, 3, 4, 5]), rx.portId);
    tx.sendRaw(encodeNlMsg({ type: 0x20, seq: 7 }), rx.portId);
    const deadline = Date.now() + 3000;
    while (got.length < 1 && Date.now() < deadline) await tick();
    assert.deepEqual(got, [7]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, 'E_DECODE');
  } finally {
    rx.close();
    tx.close();
  }
});

test('a storm from another process while we read: sent = received + dropped, in order', async () => {
  const group = 5;
  const count = 60_000;
  const rx = NetlinkSocket.open(NETLINK_USERSOCK, { rcvbuf: 16 * 1024 });
  try {
    rx.addMembership(group);
    let received = 0;
    let last = 0;
    let ordered = true;
    let batches = 0;
    rx.onMessages((msgs) => {
      batches++;
      for (const m of msgs) {
        if (m.header.seq <= last) ordered = false;
        last = m.header.seq;
        received++;
      }
    });
    const sender = fileURLToPath(new URL('./flood-sender.js', import.meta.url));
    const started = Date.now();
    const { stdout: out } = await promisify(execFile)(process.execPath, [sender, String(group), String(count), '200']);
    const sent = Number(out.trim());
    const deadline = Date.now() + 5000;
    while (received + rx.lost().dropped < sent && Date.now() < deadline) await tick();
    const lost = rx.lost();
    console.log(
      `storm: sent ${sent} received ${received} dropped ${lost.dropped} (proc ${procNetlinkDrops(NETLINK_USERSOCK, rx.portId)}) ` +
        `in ${batches} batches, ${Date.now() - started} ms`,
    );
    assert.equal(sent, count);
    assert.equal(received + lost.dropped, sent);
    assert.equal(procNetlinkDrops(NETLINK_USERSOCK, rx.portId), lost.dropped);
    assert.ok(ordered);
    assert.ok(received > 0);
  } finally {
    rx.close();
  }
});

test('the overflow that aborts the netlink package: exit 0, and open sockets do not hold the process', async () => {
  const child = fileURLToPath(new URL('./overflow-child.js', import.meta.url));
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const p = execFile(process.execPath, [child], { timeout: 10_000 }, (_err, stdout) =>
      resolve({ code: p.exitCode, stdout }),
    );
  });
  assert.equal(code, 0);
  const r = JSON.parse(stdout) as { received: number; dropped: number; enobufs: number };
  assert.equal(r.received + r.dropped, 150);
  assert.ok(r.enobufs >= 1);
});
