// Where the session's lines and drops go: the output or a view that borrowed it, packet blocks batched per delivery,
// the observers, and the drops a congested reader could not take.
import type { DropObserver, Reported, SessionOutput, SessionView } from './types.js';

/**
 * Characters of packet blocks written at once: enough to make the write(2) per batch cheap, few enough that the joined
 * text stays a regular heap object (V8 puts strings past 128 KiB in large-object space, a fresh mapping each, whose
 * page faults cost more than the formatting) and the congestion check stays current in a batch of thousands.
 */
export const WRITE_CHARS = 64 * 1024;

export class Delivery {
  /** The session's output: pending packet blocks are written before anything else, so lines keep their order. */
  readonly output: SessionOutput;
  /** The base observer and the view's: an array, so a packet storm allocates nothing per drop. */
  observers: readonly DropObserver[];
  private diverted: SessionView | null = null;
  /** Packet blocks rendered from the backend's current delivery, not yet written, and where each ends in their text. */
  private pendingBlocks: string[] = [];
  private pendingEnds: number[] = [];
  private writeQueued = false;
  /** Drops not printed because the output was congested, and how many of them have been reported lost. */
  private unwritten = 0;
  private unwrittenReported = 0;

  constructor(
    private readonly base: SessionOutput,
    private readonly observer: DropObserver | undefined,
  ) {
    this.observers = observer ? [observer] : [];
    const ordered =
      (write: (sink: SessionOutput, line: string, reported?: Reported) => void) =>
      (line: string, reported?: Reported): void => {
        this.writePending();
        write(this.sink, line, reported);
      };
    this.output = {
      data: ordered((sink, line, reported) => sink.data(line, reported)),
      message: ordered((sink, line) => sink.message(line)),
      error: ordered((sink, line) => sink.error(line)),
    };
  }

  /** Where lines go now: the view's output while one is up. */
  private get sink(): SessionOutput {
    return this.diverted?.output ?? this.base;
  }

  /** Sends lines and drops to `view` instead of the output until the returned function is called. */
  divert(view: SessionView): () => void {
    this.writePending();
    this.diverted = view;
    this.observers = [...(this.observer ? [this.observer] : []), view.observer];
    return () => {
      if (this.diverted !== view) return;
      this.writePending();
      this.diverted = null;
      this.observers = this.observer ? [this.observer] : [];
    };
  }

  /** Whether the reader is too far behind to be given more. */
  congested(): boolean {
    return this.sink.congested?.() ?? false;
  }

  /** Queues one packet's block: one write per receive batch, not per block or line, as a write(2) each costs most. */
  packet(block: string): void {
    let start = this.pendingBlocks.length === 0 ? 0 : this.pendingEnds.at(-1)! + 1;
    if (start > 0 && start + block.length > WRITE_CHARS) {
      this.writePending();
      start = 0;
    }
    this.pendingEnds.push(start + block.length);
    this.pendingBlocks.push(block);
    if (!this.writeQueued) {
      this.writeQueued = true;
      queueMicrotask(this.writePending);
    }
  }

  /** Counts drops the output could not take. */
  skip(drops: number): void {
    this.unwritten += drops;
  }

  /** Drops skipped since the last call: reported as one loss at most once an interval, and at stop. */
  takeSkipped(): number {
    const count = this.unwritten - this.unwrittenReported;
    this.unwrittenReported = this.unwritten;
    return count;
  }

  private readonly writePending = (): void => {
    this.writeQueued = false;
    if (this.pendingBlocks.length === 0) return;
    const text = this.pendingBlocks.join('\n');
    const reported = { drops: this.pendingBlocks.length, ends: this.pendingEnds };
    this.pendingBlocks = [];
    this.pendingEnds = [];
    this.sink.data(text, reported);
  };
}
