// Worker thread: the reader's I/O shell. Reads ring-buffer pages from per-CPU trace_pipe_raw descriptors (opened
// non-blocking by the main thread, which also closes them) and per-CPU stats into the pure core (reader-core.ts),
// posts what the core hands out, and sleeps and drains by reader-policy.ts. With call chains on, it also reads the
// chain instance and works its gate (reader-chains.ts).
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import fs from 'node:fs';
import { parseCpuStats, type CpuStats } from './format.js';
import { createReaderCore, PAGE_BAD, PAGE_CAUGHT_UP, type PageOutcome, type ReaderCore } from './reader-core.js';
import { ChainSwitch, monotonicMs } from './reader-chains.js';
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
  private readonly chains: ChainSwitch | null;
  private readonly feedMain: (cpuIndex: number, bytes: Uint8Array) => PageOutcome;
  private readonly feedChains: (cpuIndex: number, bytes: Uint8Array) => PageOutcome;
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
      chainBudget: init.chains?.budget,
    });
    this.feedMain = (i, bytes) => this.core.feed(i, bytes);
    this.feedChains = (i, bytes) => this.core.feedChains(i, bytes);
    this.chains = init.chains ? new ChainSwitch(init.chains, this.core, port) : null;
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
      let wait = this.backoff.after(this.readAndPost());
      if (this.chains) wait = Math.min(wait, this.chains.tend(monotonicMs()));
      if (wait > 0) this.sleep(wait);
    }
  }

  /** One pass over the CPUs, then what is due to the main thread: a full packet batch, the periodic flush. */
  private readAndPost(): PassResult {
    const { ctl, core } = this;
    // While the main thread is behind with packets, the records wait in the ring buffer; losses are still told.
    const behind = core.mode === MODE_PACKET && Atomics.load(ctl, CTL_UNTAKEN) >= MAX_UNTAKEN_BATCHES;
    const got = behind ? PASS_NONE : this.readPass(this.init.fds, this.feedMain, PAGES_PER_PASS);
    // Chains after the drops they belong to, and before a full batch of packets goes out without them.
    if (!behind) this.readChains();
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

  /** Reads the chain instance while it may hold chains. */
  private readChains(): void {
    const { chains } = this;
    if (!chains?.worthReading) return;
    chains.readDone(this.readPass(chains.init.fds, this.feedChains, PAGES_PER_PASS) === PASS_NONE);
  }

  /** The event is off: read until the CPUs stay empty, post everything, and say so. */
  private drain(): void {
    this.chains?.stop();
    const drain = createDrain(this.init.pollMs);
    for (;;) {
      const got = this.readPass(this.init.fds, this.feedMain, PAGES_PER_PASS);
      this.readChains();
      const wait = drain.after(got);
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
  /** Reads up to `maxPages` pages from every CPU's `fds`, stopping on a CPU when it is empty or caught up. */
  private readPass(
    fds: readonly number[],
    feed: (cpuIndex: number, bytes: Uint8Array) => PageOutcome,
    maxPages: number,
  ): PassResult {
    const { core, init } = this;
    const { page } = core;
    const { pageSize } = init;
    let result: PassResult = PASS_NONE;
    for (let i = 0; i < fds.length; i++) {
      for (let p = 0; ; p++) {
        if (p === maxPages) {
          result = PASS_MORE;
          break;
        }
        let n: number;
        try {
          n = fs.readSync(fds[i]!, page, 0, pageSize, null);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN' || code === 'EINTR') break;
          throw err;
        }
        if (n <= 0) break;
        if (result === PASS_NONE) result = PASS_SOME;
        const outcome = feed(i, n === pageSize ? page : page.subarray(0, n));
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
