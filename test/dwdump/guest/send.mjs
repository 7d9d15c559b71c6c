// Guest drop maker: COUNT UDP datagrams to 127.0.0.1:9, where nothing listens (one NO_SOCKET drop each), in one
// burst from one process, so the kernel sees them in order. Payload PREFIX + index (1-based), or "x".
import dgram from 'node:dgram';

const count = Number(process.argv[2] ?? '1');
const prefix = process.argv[3];
const s = dgram.createSocket('udp4');
for (let i = 1; i <= count; i++)
  await new Promise((r) => s.send(prefix === undefined ? 'x' : `${prefix}${i}`, 9, '127.0.0.1', r));
s.close();
