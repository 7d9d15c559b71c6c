// Guest drop maker: COUNT UDP datagrams (payload default "x") to 127.0.0.1:9, where nothing listens: one NO_SOCKET
// drop at __udp4_lib_rcv each, sent in one burst.
import dgram from 'node:dgram';

const count = Number(process.argv[2] ?? '1');
const payload = process.argv[3] ?? 'x';
const s = dgram.createSocket('udp4');
for (let i = 0; i < count; i++) await new Promise((r) => s.send(payload, 9, '127.0.0.1', r));
s.close();
