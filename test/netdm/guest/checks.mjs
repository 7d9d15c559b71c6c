// Guest-side NetdmBackend checks driven directly (flags, refusals, close/exit STOP, overflow accounting), and our CLI
// with a reader that stalls (memory, accounting, timing measured from here).
// Usage: checks.mjs STEP[:ARG...][=FILE]...  runs the steps in order in this one process (a node start costs ~3 s under
// TCG), each printing one JSON object per line (bigints as strings) to its FILE (appended) or to stdout. A step that
// throws prints {"check":"error",...} and the next step still runs. start-exit ends the process, so it comes last.
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { appendFileSync, closeSync, constants, openSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { openNetdmBackend } from '/project/dist/src/netdm/index.js';

let target = null;
const out = (o) => {
  const line = JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  if (target === null) console.log(line);
  else appendFileSync(target, `${line}\n`);
};
/** Udp NoPorts in /proc/net/snmp: datagrams to a port nobody listens on, one NO_SOCKET drop each. */
const noPorts = () => {
  const [names, values] = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp: '))
    .map((l) => l.split(' '));
  return Number(values[names.indexOf('NoPorts')]);
};
/** The process's peak resident set so far (VmHWM), KiB; null once it is gone. */
const peakKiB = (pid) => {
  try {
    // A zombie's status has no Vm lines.
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
};
const err = (e) => ({ code: e.code, errno: e.errno, extack: e.extack, message: e.message });
const idle = { sw: false, hw: false };

async function step(mode, args) {
  if (mode === 'stop') {
    // Recovery from a kernel left monitoring: a STOP from a process that never started anything.
    const b = await openNetdmBackend();
    try {
      await b.stop();
      out({ check: 'recover-stop', ok: true });
    } catch (e) {
      out({ check: 'recover-stop', ok: false, ...err(e) });
    }
    await b.close();
  } else if (mode === 'start-exit') {
    // Starts and leaves through process.exit without close(): the exit hook must STOP.
    const b = await openNetdmBackend();
    await b.start(idle);
    out({ check: 'start-exit', started: b.isMonitoring });
    process.exit(0);
  } else if (mode === 'startstop') {
    const b = await openNetdmBackend();
    try {
      await b.start(idle);
      out({ check: args[0], start: 'ok' });
    } catch (e) {
      out({ check: args[0], start: 'failed', ...err(e) });
    }
    await b.close();
  } else if (mode === 'api') {
    const b = await openNetdmBackend();
    out({ check: 'family', familyId: b.familyId, groupId: b.groupId, name: b.name, capabilities: b.capabilities });
    out({ check: 'config', config: await b.getConfig() });
    for (const opts of [
      { sw: true, hw: false },
      { sw: true, hw: true },
      { sw: false, hw: true },
    ]) {
      try {
        await b.start(opts);
        out({ check: 'flags', opts, start: 'ok' });
        await b.stop();
      } catch (e) {
        out({ check: 'flags', opts, start: 'failed', ...err(e) });
      }
    }
    const other = await openNetdmBackend();
    await b.start(idle);
    try {
      await other.start(idle);
      out({ check: 'double-start', ok: true });
    } catch (e) {
      out({ check: 'double-start', ...err(e) });
    }
    try {
      await other.setConfig({ alertMode: 'packet' });
      out({ check: 'config-busy', ok: true });
    } catch (e) {
      out({ check: 'config-busy', ...err(e) });
    }
    try {
      await b.setConfig({ alertMode: 'packet', queueLen: 5 });
    } catch (e) {
      out({ check: 'config-busy-own', ...err(e) });
    }
    await b.close(); // must send STOP
    await b.close(); // idempotent
    try {
      await other.start(idle);
      out({ check: 'start-after-close', ok: true });
      await other.stop();
    } catch (e) {
      out({ check: 'start-after-close', ...err(e) });
    }
    // Configuration round trip.
    await other.setConfig({ alertMode: 'packet', truncLen: 20, queueLen: 7 });
    out({ check: 'config-set', config: await other.getConfig() });
    await other.setConfig({ alertMode: 'summary', truncLen: 0, queueLen: 1000 });
    out({ check: 'config-reset', config: await other.getConfig() });
    await other.close();
  } else if (mode === 'overflow') {
    const n = Number(args[0] ?? '5000');
    const rcvbuf = Number(args[1] ?? '32768');
    const b = await openNetdmBackend({ rcvbuf });
    await b.setConfig({ alertMode: 'packet', truncLen: 0, queueLen: 100000 });
    let received = 0;
    let other = 0;
    let lostEvents = 0;
    let last = Date.now();
    b.onEvent((e) => {
      last = Date.now();
      if (e.kind === 'packet') {
        if (e.packet.reason === 'NO_SOCKET' && e.packet.protocol === 0x800) received++;
        else other++;
      } else if (e.kind === 'lost') lostEvents += e.count;
    });
    const before = await b.getStats();
    await b.start(idle);
    // bash, not node: it starts in milliseconds, so the burst arrives while the loop below is stalled.
    const sender = spawn('/guest/send.sh', [String(n)], {
      stdio: 'inherit',
      env: { ...process.env, SHELL: '/bin/sh' },
    });
    // Stall our event loop while the burst arrives, so the small receive buffer overflows for sure.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
    await once(sender, 'exit');
    while (Date.now() - last < 1500) await new Promise((r) => setTimeout(r, 250));
    await b.stop();
    const after = await b.getStats();
    const socketLost = after.lost.find((l) => l.where === 'netlink socket')?.count ?? -1;
    const tail = after.software.tailDropped - before.software.tailDropped;
    out({
      check: 'overflow',
      sent: n,
      rcvbuf,
      received,
      other,
      lostEvents,
      socketLost,
      tailDropped: tail,
      lost: after.lost,
    });
    await b.setConfig({ alertMode: 'summary', truncLen: 0, queueLen: 1000 });
    await b.close();
  } else if (mode === 'stalled') {
    // Our CLI in packet mode, JSON, its stdout a pipe whose reader is stopped until the run has ended, while a flood of
    // COUNT datagrams of SIZE bytes goes to 127.0.0.1:9 (unconnected: no ECONNREFUSED, one NO_SOCKET drop each). The
    // big payloads make the JSON lines big, so the output passes the 8 MiB bound within a short burst.
    const [count, size, seconds] = args.map(Number);
    const stepStarted = performance.now();
    const stats = await openNetdmBackend();
    const tail = async () => (await stats.getStats()).software.tailDropped;
    const tail0 = await tail();
    const noPorts0 = noPorts();
    // A named pipe, as `dropwatch | reader` has (a spawned child's 'pipe' is a socket pair, with a bigger buffer): its
    // one reader, cat, is stopped before anything is written, so it takes nothing until the run has ended.
    const fifo = '/tmp/stalled.fifo';
    rmSync(fifo, { force: true });
    execFileSync('mkfifo', [fifo]);
    const probe = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeEnd = openSync(fifo, 'w');
    const readEnd = openSync(fifo, 'r');
    closeSync(probe);
    const outFd = openSync('/tmp/stalled.json', 'w');
    const reader = spawn('cat', [], { stdio: [readEnd, outFd, 'inherit'] });
    reader.kill('SIGSTOP');
    // -l none: packet alerts carry their symbol, and loading kallsyms is most of the CLI's start under TCG.
    const run = spawn(
      process.execPath,
      ['/project/bin/dropwatch', '-l', 'none', '-s', '-d', String(seconds), '-m', 'packet', '-f', 'json'],
      { stdio: ['ignore', writeEnd, 'pipe'] },
    );
    for (const fd of [readEnd, writeEnd, outFd]) closeSync(fd);
    let stderr = '';
    run.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((resolve) => run.on('exit', (code) => resolve(code)));
    let code, sent, sendMs, runMs, sampler, timer;
    let peak = 0;
    try {
      const waitUntil = Date.now() + 60_000;
      while (!stderr.includes('Kernel monitoring activated.') && run.exitCode === null && Date.now() < waitUntil)
        await new Promise((r) => setTimeout(r, 10));
      const started = performance.now();
      sampler = setInterval(() => (peak = Math.max(peak, peakKiB(run.pid) ?? 0)), 50);
      const sock = createSocket('udp4');
      const payload = Buffer.alloc(size, 'x');
      sent = 0;
      await new Promise((resolve, reject) => {
        for (let i = 0; i < count; i++)
          sock.send(payload, 9, '127.0.0.1', (e) => (e ? reject(e) : ++sent === count && resolve()));
      });
      sendMs = performance.now() - started;
      sock.close();
      code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, (seconds + 30) * 1000, 'hung')))]);
      runMs = performance.now() - started;
    } finally {
      clearInterval(sampler);
      clearTimeout(timer);
      // Whatever happened, the reader takes what there is and sees the end, so this process can go on.
      if (run.exitCode === null && run.signalCode === null) run.kill('SIGKILL');
      reader.kill('SIGCONT');
      await once(reader, 'exit');
    }
    const text = readFileSync('/tmp/stalled.json', 'utf8');
    const lines = text.split('\n');
    // The last element is what follows the last newline: a line the reader got only part of.
    const whole = lines
      .slice(0, -1)
      .filter((l) => l.startsWith('{"type":"packet"'))
      .map((l) => JSON.parse(l));
    const ours = whole.filter((p) => p.reason === 'NO_SOCKET' && p.protocol === 0x800 && p.length === size + 42);
    out({
      check: 'stalled',
      count,
      size,
      seconds,
      sent,
      noPorts: noPorts() - noPorts0,
      tailDropped: (await tail()) - tail0,
      printed: ours.length,
      printedOther: whole.length - ours.length,
      outputBytes: text.length,
      code,
      sendMs: Math.round(sendMs),
      runMs: Math.round(runMs),
      peakKiB: peak,
      stepMs: Math.round(performance.now() - stepStarted),
      stderr,
    });
    // Our CLI leaves the kernel in packet mode (as Debian's does); the steps after this one count summaries.
    await stats.setConfig({ alertMode: 'summary', truncLen: 0, queueLen: 1000 });
    await stats.close();
  } else throw new Error(`unknown step ${mode}`);
}

for (const spec of process.argv.slice(2)) {
  const eq = spec.indexOf('=');
  target = eq < 0 ? null : spec.slice(eq + 1);
  const [mode, ...args] = (eq < 0 ? spec : spec.slice(0, eq)).split(':');
  try {
    await step(mode, args);
  } catch (e) {
    console.error(e);
    out({ check: 'error', step: mode, ...err(e) });
  }
}
