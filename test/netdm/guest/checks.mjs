// Guest-side NetdmBackend checks driven directly (no CLI): flags, refusals, close/exit STOP, overflow accounting.
// Usage: checks.mjs STEP[:ARG...][=FILE]...  runs the steps in order in this one process (a node start costs ~3 s under
// TCG), each printing one JSON object per line (bigints as strings) to its FILE (appended) or to stdout. A step that
// throws prints {"check":"error",...} and the next step still runs. start-exit ends the process, so it comes last.
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { once } from 'node:events';
import { openNetdmBackend } from '/project/dist/src/netdm/index.js';

let target = null;
const out = (o) => {
  const line = JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  if (target === null) console.log(line);
  else appendFileSync(target, `${line}\n`);
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
