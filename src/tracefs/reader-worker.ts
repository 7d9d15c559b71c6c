// Worker thread: the reader's I/O shell. Reads ring-buffer pages from per-CPU trace_pipe_raw descriptors (opened
// non-blocking by the main thread, which also closes them) and per-CPU stats into the pure core (reader-core.ts),
// posts what the core hands out, and sleeps and drains by reader-policy.ts.
import { parentPort, workerData } from 'node:worker_threads';
import fs from 'node:fs';
import { parseCpuStats, type CpuStats } from './format.js';
import { createReaderCore, PAGE_BAD, PAGE_CAUGHT_UP } from './reader-core.js';
import {
  createBackoff,
  createDrain,
  MAX_UNTAKEN_BATCHES,
  PACKETS_PER_BATCH,
  PAGES_PER_PASS,
  PASS_MORE,
  PASS_NONE,
  PASS_SOME,
  type PassResult,
} from './reader-policy.js';
import {
  CMD_ABORT,
  CMD_DRAIN,
  CTL_CMD,
  CTL_MODE,
  CTL_UNTAKEN,
  CTL_WAKE,
  MODE_PACKET,
  type ReaderInit,
  type ReaderMessage,
} from './reader-protocol.js';

function run(init: ReaderInit): void {
  const port = parentPort!;
  const ctl = new Int32Array(init.ctl);
  const { pageSize } = init;
  const core = createReaderCore({
    cpus: init.cpus,
    layouts: init.layouts,
    skb: init.skb,
    pageSize,
    maxPending: init.maxPending,
    mode: Atomics.load(ctl, CTL_MODE),
    stack: init.stack,
  });
  const page = core.page;

  const post = (m: ReaderMessage): void => {
    if (m.type === 'packets') {
      Atomics.add(ctl, CTL_UNTAKEN, 1);
      port.postMessage(m, [
        m.ts.buffer as ArrayBuffer,
        m.loc.buffer as ArrayBuffer,
        m.reasonProtocolPairs.buffer as ArrayBuffer,
        m.pid.buffer as ArrayBuffer,
      ]);
    } else port.postMessage(m);
  };

  const readStats = (): (CpuStats | null)[] =>
    init.statsPaths.map((p) => {
      try {
        return parseCpuStats(fs.readFileSync(p, 'utf8'));
      } catch {
        return null; // stats unreadable (instance going away): page-header counts still stand
      }
    });

  const flush = (): void => {
    for (const m of core.flush(readStats())) post(m);
  };

  // A read returns at most one page (tracing_buffers_read), and a non-blocking read also hands out the page the
  // writer is still filling, a few records at a time, so a reader that keeps up with a flood pays a read() per few
  // drops. A pass therefore stops on a CPU once a page comes back less than half full (we have caught up with the
  // writer), and the loop waits before the next pass, letting pages fill.
  /** Reads up to `maxPages` pages from every CPU, stopping on a CPU when it is empty or caught up. */
  const readPass = (maxPages: number): PassResult => {
    let result: PassResult = PASS_NONE;
    for (let i = 0; i < init.fds.length; i++) {
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
        const outcome = core.feed(i, n === pageSize ? page : page.subarray(0, n));
        if (outcome === PAGE_BAD) {
          const message = core.takeDecodeError();
          if (message !== null) port.postMessage({ type: 'error', fatal: false, message } satisfies ReaderMessage);
        } else if (outcome === PAGE_CAUGHT_UP) break;
      }
    }
    return result;
  };

  let lastFlush = performance.now();
  const backoff = createBackoff(init.pollMs, init.maxPollMs);
  const sleep = (ms: number): void => {
    Atomics.wait(ctl, CTL_WAKE, Atomics.load(ctl, CTL_WAKE), ms);
  };
  for (;;) {
    const cmd = Atomics.load(ctl, CTL_CMD);
    if (cmd === CMD_ABORT) break;
    const newMode = Atomics.load(ctl, CTL_MODE);
    if (newMode !== core.mode) {
      flush(); // what was gathered in the old mode goes out in the old mode's shape
      core.mode = newMode;
    }
    if (cmd === CMD_DRAIN) {
      const drain = createDrain(init.pollMs);
      for (;;) {
        const wait = drain.after(readPass(PAGES_PER_PASS));
        if (wait === null) break;
        if (wait > 0) sleep(wait);
      }
      flush();
      port.postMessage({ type: 'drained' } satisfies ReaderMessage);
      break;
    }
    // While the main thread is behind with packets, the records wait in the ring buffer; losses are still told.
    const behind = core.mode === MODE_PACKET && Atomics.load(ctl, CTL_UNTAKEN) >= MAX_UNTAKEN_BATCHES;
    const got = behind ? PASS_NONE : readPass(PAGES_PER_PASS);
    if (!behind && core.pendingPackets >= PACKETS_PER_BATCH) {
      const batch = core.takePackets();
      if (batch) post(batch);
    }
    const now = performance.now();
    if (now - lastFlush >= init.flushMs) {
      if (behind) for (const m of core.takeLost(readStats())) post(m);
      else flush();
      lastFlush = now;
    }
    const wait = backoff.after(got);
    if (wait > 0) sleep(wait);
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
