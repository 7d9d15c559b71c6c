// Worker thread: the reader's I/O shell. Reads ring-buffer pages from per-CPU trace_pipe_raw descriptors (opened
// non-blocking by the main thread, which also closes them) and per-CPU stats into the pure core (reader-core.ts),
// posts what the core hands out, and sleeps and drains by reader-policy.ts.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import fs from 'node:fs';
import { parseCpuStats, type CpuStats } from './format.js';
import { createReaderCore, PAGE_BAD, PAGE_CAUGHT_UP, type ReaderCore } from './reader-core.js';
import {
  createBackoff,
  createDrain,
  MAX_UNTAKEN_BATCHES,
  PACKETS_PER_BATCH,
  PAGES_PER_PASS,
  PASS_MORE,
  PASS_NONE,
  PASS_SOME,
  type Backoff,
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

/** The reader's loop over one instance's CPUs, until the main thread says drain or abort. */
class ReaderThread {
  private readonly ctl: Int32Array;
  private readonly core: ReaderCore;
  private readonly backoff: Backoff;
  private lastFlush: number;

  constructor(
    private readonly init: ReaderInit,
    private readonly port: MessagePort,
  ) {
    this.ctl = new Int32Array(init.ctl);
    this.core = createReaderCore({
      cpus: init.cpus,
      layouts: init.layouts,
      skb: init.skb,
      pageSize: init.pageSize,
      maxPending: init.maxPending,
      mode: Atomics.load(this.ctl, CTL_MODE),
      stack: init.stack,
    });
    this.backoff = createBackoff(init.pollMs, init.maxPollMs);
    this.lastFlush = performance.now();
  }

  readUntilStopped(): void {
    const { ctl, core } = this;
    for (;;) {
      const cmd = Atomics.load(ctl, CTL_CMD);
      if (cmd === CMD_ABORT) break;
      const newMode = Atomics.load(ctl, CTL_MODE);
      if (newMode !== core.mode) {
        this.flush(); // what was gathered in the old mode goes out in the old mode's shape
        core.mode = newMode;
      }
      if (cmd === CMD_DRAIN) {
        this.drain();
        break;
      }
      const wait = this.backoff.after(this.readAndPost());
      if (wait > 0) this.sleep(wait);
    }
  }

  /** One pass over the CPUs, then what is due to the main thread: a full packet batch, the periodic flush. */
  private readAndPost(): PassResult {
    const { ctl, core } = this;
    // While the main thread is behind with packets, the records wait in the ring buffer; losses are still told.
    const behind = core.mode === MODE_PACKET && Atomics.load(ctl, CTL_UNTAKEN) >= MAX_UNTAKEN_BATCHES;
    const got = behind ? PASS_NONE : this.readPass(PAGES_PER_PASS);
    if (!behind && core.pendingPackets >= PACKETS_PER_BATCH) {
      const batch = core.takePackets();
      if (batch) this.post(batch);
    }
    const now = performance.now();
    if (now - this.lastFlush >= this.init.flushMs) {
      if (behind) for (const m of core.takeLost(this.readStats())) this.post(m);
      else this.flush();
      this.lastFlush = now;
    }
    return got;
  }

  /** The event is off: read until the CPUs stay empty, post everything, and say so. */
  private drain(): void {
    const drain = createDrain(this.init.pollMs);
    for (;;) {
      const wait = drain.after(this.readPass(PAGES_PER_PASS));
      if (wait === null) break;
      if (wait > 0) this.sleep(wait);
    }
    this.flush();
    this.port.postMessage({ type: 'drained' } satisfies ReaderMessage);
  }

  // A read returns at most one page (tracing_buffers_read), and a non-blocking read also hands out the page the
  // writer is still filling, a few records at a time, so a reader that keeps up with a flood pays a read() per few
  // drops. A pass therefore stops on a CPU once a page comes back less than half full (we have caught up with the
  // writer), and the loop waits before the next pass, letting pages fill.
  /** Reads up to `maxPages` pages from every CPU, stopping on a CPU when it is empty or caught up. */
  private readPass(maxPages: number): PassResult {
    const { core, init } = this;
    const { page } = core;
    const { pageSize } = init;
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
          if (message !== null) this.port.postMessage({ type: 'error', fatal: false, message } satisfies ReaderMessage);
        } else if (outcome === PAGE_CAUGHT_UP) break;
      }
    }
    return result;
  }

  private sleep(ms: number): void {
    Atomics.wait(this.ctl, CTL_WAKE, Atomics.load(this.ctl, CTL_WAKE), ms);
  }

  private post(m: ReaderMessage): void {
    if (m.type === 'packets') {
      Atomics.add(this.ctl, CTL_UNTAKEN, 1);
      this.port.postMessage(m, [
        m.ts.buffer as ArrayBuffer,
        m.loc.buffer as ArrayBuffer,
        m.reasonProtocolPairs.buffer as ArrayBuffer,
        m.pid.buffer as ArrayBuffer,
      ]);
    } else this.port.postMessage(m);
  }

  private readStats(): (CpuStats | null)[] {
    return this.init.statsPaths.map((p) => {
      try {
        return parseCpuStats(fs.readFileSync(p, 'utf8'));
      } catch {
        return null; // stats unreadable (instance going away): page-header counts still stand
      }
    });
  }

  private flush(): void {
    for (const m of this.core.flush(this.readStats())) this.post(m);
  }
}

if (parentPort) {
  try {
    new ReaderThread(workerData as ReaderInit, parentPort).readUntilStopped();
  } catch (err) {
    parentPort.postMessage({
      type: 'error',
      fatal: true,
      message: (err as Error)?.message ?? String(err),
    } satisfies ReaderMessage);
  }
}
