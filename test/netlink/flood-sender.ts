// Child process for socket.int.test.ts: multicasts `count` USERSOCK messages to `group` as fast as it can, while the
// parent reads; prints how many the kernel accepted.
import { encodeNlMsg, NETLINK_USERSOCK, NetlinkSocket } from '../../src/netlink/index.js';
import { KernelError } from '../../src/errors/index.js';

const [group, count, size] = process.argv.slice(2).map(Number) as [number, number, number];
const tx = NetlinkSocket.open(NETLINK_USERSOCK);
const payload = new Uint8Array(size);
let sent = 0;
for (let seq = 1; seq <= count; seq++) {
  try {
    tx.sendRaw(encodeNlMsg({ type: 0x20, seq }, payload), 0, 1 << (group - 1));
  } catch (e) {
    // ECONNREFUSED comes from the unicast leg to USERSOCK's absent port 0, after the broadcast went out
    if (!(e instanceof KernelError && e.errno === 111)) throw e;
  }
  sent++;
}
tx.close();
process.stdout.write(`${sent}\n`);
