// Worker thread: reads binary ring-buffer pages from per-CPU trace_pipe_raw descriptors (opened non-blocking by
// the main thread, which also closes them), decodes kfree_skb records and posts batches. Summary mode aggregates by
// (location, reason) here so a drop storm costs the main thread one message per flush, not one per drop.
import { parentPort, workerData } from 'node:worker_threads';
import fs from 'node:fs';
import { decodePage } from './page.js';
import { lostFromStats, parseCpuStats, type CpuStats } from './format.js';

import {
  CMD_ABORT,
  CMD_DRAIN,
  CTL_CMD,
  CTL_MODE,
  CTL_WAKE,
  MODE_SUMMARY,
  NO_VALUE,
  type ReaderInit,
  type ReaderMessage,
  type SummaryRow,
} from './reader-protocol.js';

function run(init: ReaderInit): void {
  const port = parentPort!;
  const ctl = new Int32Array(init.ctl);
  const { skb, layouts, pageSize } = init;
  const le = layouts.littleEndian ?? true;
  const page = new Uint8Array(pageSize);
  const view = new DataView(page.buffer);
  const ctOff = skb.commonType.offset;
  const ctSize = skb.commonType.size;
  const locOff = skb.location.offset;
  const loc64 = skb.location.size === 8;
  const reasonOff = skb.reason ? skb.reason.offset : -1;
  const reasonSize = skb.reason ? skb.reason.size : 0;
  const protoOff = skb.protocol ? skb.protocol.offset : -1;
  const protoSize = skb.protocol ? skb.protocol.size : 0;
  const eventId = skb.eventId;
  const minLength = skb.minLength;

  const small = (off: number, size: number): number =>
    size === 4 ? view.getUint32(off, le) : size === 2 ? view.getUint16(off, le) : view.getUint8(off);

  // Summary: hi → (lo + reason * 2^32) → count. Reasons beyond 2^20 (never seen) go to a string-keyed map.
  let agg = new Map<number, Map<number, number>>();
  let aggOdd = new Map<string, number>();
  let aggCount = 0;

  let cap = Math.min(init.maxPending, 4096);
  let ts = new BigUint64Array(cap);
  let loc = new BigUint64Array(cap);
  let rp = new Uint32Array(cap * 2);
  let pending = 0;

  const ring = init.cpus.map(() => 0);
  const pageMissed = init.cpus.map(() => 0);
  const backlog = init.cpus.map(() => 0);
  /** Records that became drops (aggregated or queued), per CPU: the kernel's `read events` less these were lost here. */
  const delivered = init.cpus.map(() => 0);
  const undecoded = init.cpus.map(() => 0);
  const reported = init.cpus.map(() => ({ ring: 0, backlog: 0, undecoded: 0 }));
  let mode = Atomics.load(ctl, CTL_MODE);
  let cpuIndex = 0;
  let decodeErrors = 0;

  const visit = (off: number, len: number, tsBase: bigint, tsRel: number): void => {
    if (len < minLength || small(off + ctOff, ctSize) !== eventId) return;
    delivered[cpuIndex]!++;
    const reason = reasonOff >= 0 ? small(off + reasonOff, reasonSize) : NO_VALUE;
    if (mode === MODE_SUMMARY) {
      const lo = view.getUint32(off + locOff, le);
      const hi = loc64 ? view.getUint32(off + locOff + 4, le) : 0;
      if (reason < 0x100000) {
        const key = lo + reason * 4294967296;
        // A storm is mostly one location: count runs and touch the maps only when the key changes.
        if (key === runKey && hi === runHi) runCount++;
        else {
          endRun();
          runHi = hi;
          runKey = key;
          runCount = 1;
        }
      } else {
        const key = `${hi}:${lo}:${reason}`;
        aggOdd.set(key, (aggOdd.get(key) ?? 0) + 1);
      }
      aggCount++;
      return;
    }
    if (pending >= cap) {
      if (cap >= init.maxPending) {
        backlog[cpuIndex]!++;
        return;
      }
      cap = Math.min(init.maxPending, cap * 4);
      const nts = new BigUint64Array(cap);
      nts.set(ts);
      ts = nts;
      const nloc = new BigUint64Array(cap);
      nloc.set(loc);
      loc = nloc;
      const nrp = new Uint32Array(cap * 2);
      nrp.set(rp);
      rp = nrp;
    }
    ts[pending] = tsBase + BigInt(tsRel);
    loc[pending] = loc64 ? view.getBigUint64(off + locOff, le) : BigInt(view.getUint32(off + locOff, le));
    rp[pending * 2] = reason;
    rp[pending * 2 + 1] = protoOff >= 0 ? small(off + protoOff, protoSize) : NO_VALUE;
    pending++;
  };

  let runHi = -1;
  let runKey = -1;
  let runCount = 0;
  function endRun(): void {
    if (runCount === 0) return;
    let inner = agg.get(runHi);
    if (!inner) agg.set(runHi, (inner = new Map()));
    inner.set(runKey, (inner.get(runKey) ?? 0) + runCount);
    runCount = 0;
  }

  const flushSummary = (): void => {
    endRun();
    if (aggCount === 0) return;
    const rows: SummaryRow[] = [];
    for (const [hi, inner] of agg) {
      for (const [key, count] of inner) {
        const reason = Math.floor(key / 4294967296);
        rows.push([hi, key - reason * 4294967296, reason, count]);
      }
    }
    for (const [key, count] of aggOdd) {
      const [hi, lo, reason] = key.split(':').map(Number) as [number, number, number];
      rows.push([hi, lo, reason, count]);
    }
    agg = new Map();
    aggOdd = new Map();
    aggCount = 0;
    port.postMessage({ type: 'summary', rows } satisfies ReaderMessage);
  };

  const flushPackets = (): void => {
    if (pending === 0) return;
    const msg: ReaderMessage = {
      type: 'packets',
      count: pending,
      ts: ts.slice(0, pending),
      loc: loc.slice(0, pending),
      rp: rp.slice(0, pending * 2),
    };
    port.postMessage(msg, [msg.ts.buffer as ArrayBuffer, msg.loc.buffer as ArrayBuffer, msg.rp.buffer as ArrayBuffer]);
    pending = 0;
  };

  const flushLost = (): void => {
    init.cpus.forEach((cpu, i) => {
      let stats: CpuStats | null = null;
      try {
        stats = parseCpuStats(fs.readFileSync(init.statsPaths[i]!, 'utf8'));
      } catch {
        // Stats unreadable (instance going away): page-header counts still stand.
      }
      // Page-header counts are derived from the same overrun counter, so the larger of the two is exact, not a sum.
      ring[i] = Math.max(ring[i]!, stats ? lostFromStats(stats) : 0, pageMissed[i]!);
      // The kernel counts every record our reads took (`read events`, whole and partial pages alike), and reads happen
      // only on this thread: what it handed us and never became a drop (the rest of a page that failed to decode, a
      // record of the wrong shape) is the difference, exactly.
      if (stats) undecoded[i] = Math.max(undecoded[i]!, stats.readEvents - delivered[i]!);
      const r = reported[i]!;
      if (ring[i]! > r.ring || backlog[i]! > r.backlog || undecoded[i]! > r.undecoded) {
        r.ring = ring[i]!;
        r.backlog = backlog[i]!;
        r.undecoded = undecoded[i]!;
        port.postMessage({
          type: 'lost',
          cpu,
          ring: r.ring,
          backlog: r.backlog,
          undecoded: r.undecoded,
        } satisfies ReaderMessage);
      }
    });
  };

  const flush = (): void => {
    flushSummary();
    flushPackets();
    flushLost();
  };

  // A read returns at most one page (tracing_buffers_read), and a non-blocking read also hands out the page the
  // writer is still filling, a few records at a time. A reader that keeps up with a flood on the other CPU therefore
  // made ~5 records per read() (430k reads for 2M drops, 1.1 µs/drop) instead of ~90 (23k reads, 0.12 µs/drop). So a
  // pass stops on a CPU once a page comes back less than half full (we have caught up with the writer) and the loop
  // waits before the next pass, letting pages fill; 4 MiB per CPU is ~150 ms of a 600k/s flood, the wait 10 ms.
  const halfPage = layouts.page.dataSize / 2;
  const PASS_NONE = 0;
  const PASS_SOME = 1;
  /** A CPU still had full pages when its page budget ran out: read again without waiting. */
  const PASS_MORE = 2;

  /** Reads up to `maxPages` pages from every CPU, stopping on a CPU when it is empty or caught up. */
  const readPass = (maxPages: number): number => {
    let result = PASS_NONE;
    for (let i = 0; i < init.fds.length; i++) {
      cpuIndex = i;
      for (let p = 0; ; p++) {
        if (p === maxPages) {
          result = PASS_MORE;
          break;
        }
        let n: number;
        try {
          n = fs.readSync(init.fds[i]!, page, 0, pageSize, null);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN' || code === 'EINTR') break;
          throw err;
        }
        if (n <= 0) break;
        if (result === PASS_NONE) result = PASS_SOME;
        if (n < pageSize) page.fill(0, n);
        let caughtUp = false;
        try {
          const info = decodePage(n === pageSize ? page : page.subarray(0, n), layouts, visit);
          if (info.missedEvents && info.missedCount !== null) pageMissed[i]! += info.missedCount;
          caughtUp = info.dataLength < halfPage;
        } catch (err) {
          // One bad page must not end monitoring; the records before the bad one were already counted.
          decodeErrors++;
          if (decodeErrors <= 3)
            port.postMessage({ type: 'error', fatal: false, message: (err as Error).message } satisfies ReaderMessage);
        }
        if (caughtUp) break;
      }
    }
    return result;
  };

  let lastFlush = performance.now();
  const maxWait = Math.max(init.pollMs, init.maxPollMs);
  let wait = init.pollMs;
  for (;;) {
    const cmd = Atomics.load(ctl, CTL_CMD);
    if (cmd === CMD_ABORT) break;
    const newMode = Atomics.load(ctl, CTL_MODE);
    if (newMode !== mode) {
      flush(); // what was gathered in the old mode goes out in the old mode's shape
      mode = newMode;
    }
    if (cmd === CMD_DRAIN) {
      // The event is off; a probe already running on another CPU may still commit, so wait for two empty passes.
      let empty = 0;
      for (let guard = 0; guard < 100_000 && empty < 2; guard++) {
        if (readPass(256) !== PASS_NONE) empty = 0;
        else {
          empty++;
          Atomics.wait(ctl, CTL_WAKE, Atomics.load(ctl, CTL_WAKE), Math.min(init.pollMs, 5));
        }
      }
      flush();
      port.postMessage({ type: 'drained' } satisfies ReaderMessage);
      break;
    }
    const got = readPass(256);
    const now = performance.now();
    if (now - lastFlush >= init.flushMs) {
      flush();
      lastFlush = now;
    }
    if (got === PASS_MORE) continue;
    // Back off while idle (each empty read is a syscall and an EAGAIN exception), snap back when data flows; after
    // a pass that found data, still wait, so the next pass reads full pages rather than chasing the writer.
    wait = got === PASS_SOME ? init.pollMs : Math.min(maxWait, wait * 2);
    Atomics.wait(ctl, CTL_WAKE, Atomics.load(ctl, CTL_WAKE), wait);
  }
}

if (parentPort) {
  try {
    run(workerData as ReaderInit);
  } catch (err) {
    parentPort.postMessage({
      type: 'error',
      fatal: true,
      message: (err as Error)?.message ?? String(err),
    } satisfies ReaderMessage);
  }
}
