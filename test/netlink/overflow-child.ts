// Child process for socket.int.test.ts: the case that aborts the `netlink` package (150 x 1 KiB multicasts at a full
// queue, ENOBUFS on), then leaves its sockets open: the process must report and exit 0 on its own.
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeNlMsg, NETLINK_USERSOCK, NetlinkSocket } from '../../src/netlink/index.js';
import { KernelError } from '../../src/errors/index.js';

const rx = NetlinkSocket.open(NETLINK_USERSOCK, { rcvbuf: 4096, noEnobufs: false });
const tx = NetlinkSocket.open(NETLINK_USERSOCK);
rx.addMembership(1);
let received = 0;
rx.onMessages((m) => (received += m.length));
for (let seq = 1; seq <= 150; seq++) {
  try {
    tx.sendRaw(encodeNlMsg({ type: 0x20, seq }, new Uint8Array(1024)), 0, 1);
  } catch (e) {
    if (!(e instanceof KernelError && e.errno === 111)) throw e;
  }
}
await sleep(200);
process.stdout.write(JSON.stringify({ received, ...rx.lost() }) + '\n');
