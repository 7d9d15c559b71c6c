// Manual measurement (not a test): CPU our process spends per drop during a loopback UDP flood to a closed port in a
// throwaway netns, drops counted vs sent, and the sender's rate with and without monitoring.
// Run as root after `npx tsc -p .`: node dist/test/tracefs/measure-flood.js [seconds]
import { spawn } from 'node:child_process';
import { openTracefsBackend } from '../../src/tracefs/index.js';
import { symbolRange } from '../helpers/kernel.js';
import { Netns } from '../helpers/netns.js';

const seconds = Number(process.argv[2] ?? 3);
// A synchronous Python sender is faster than node's async dgram, so the reader is the thing under stress.
const SENDER = `
import socket, time, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + float(sys.argv[1]); n = 0
while time.monotonic() < end:
    for _ in range(1000):
        try: s.sendto(b'x', ('127.0.0.1', 9))
        except OSError: pass
    n += 1000
print(n)
`;

function flood(ns: Netns, secs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn('ip', ['netns', 'exec', ns.name, 'python3', '-c', SENDER, String(secs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`sender ${code}`))));
  });
}

const ns = new Netns();
try {
  const udp4 = symbolRange('__udp4_lib_rcv')!;
  const base = await flood(ns, seconds);
  console.log(`unmonitored: ${base} sent in ${seconds}s (${Math.round(base / seconds)}/s)`);
  const b = await openTracefsBackend({ instancePrefix: 'dwtest', onWarning: console.warn });
  let counted = 0;
  let lost = 0;
  b.onEvent((e) => {
    if (e.kind === 'summary') {
      for (const x of e.entries) if (x.reason === 'NO_SOCKET' && x.pc >= udp4[0] && x.pc < udp4[1]) counted += x.count;
    } else if (e.kind === 'lost') lost += e.count;
  });
  await b.start({ sw: true, hw: false });
  const cpu0 = process.cpuUsage();
  const sent = await flood(ns, seconds);
  await b.stop();
  const cpu = process.cpuUsage(cpu0);
  await b.close();
  const us = cpu.user + cpu.system;
  console.log(
    `monitored: ${sent} sent (${Math.round(sent / seconds)}/s, ${((100 * sent) / base).toFixed(0)}% of unmonitored)`,
  );
  console.log(
    `counted ${counted} NO_SOCKET in __udp4_lib_rcv, lost ${lost}, counted+lost-sent ${counted + lost - sent}`,
  );
  console.log(`reader CPU ${(us / 1000).toFixed(0)} ms = ${(us / sent).toFixed(3)} µs per drop`);
} finally {
  ns.delete();
}
