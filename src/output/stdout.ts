// Standard output as the run's drop reports see it: the reader leaving, a failed write, and a bounded backlog.
import type { Writable } from 'node:stream';
import { DropwatchError, errnoText } from '../errors/index.js';
import type { Reported, SessionOutput } from '../engine/types.js';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * Bytes queued for a pipe's reader past which drop reports are counted instead of printed. Node queues every write a
 * pipe does not take at once, so without a bound a stalled reader makes the queue grow until the heap is exhausted.
 */
export const BACKLOG_LIMIT = 8 * 1024 * 1024;

const NOTHING: Reported = { drops: 0 };

/** At the end, how long a reader may take nothing before what it has not taken is given up and counted. */
export const STALL_MS = 500;
/** At the end, the longest wait for a reader that keeps taking output, but slowly. */
export const SETTLE_MAX_MS = 10_000;

export interface StdoutGuard {
  readonly open: boolean;
  /** Why stdout failed, when it was not the reader leaving (EPIPE ends a run quietly): the run's error to report. */
  readonly failure: DropwatchError | null;
  /** What to do when the reader goes away (or stdout fails otherwise). */
  onClosed(fn: () => void): void;
  /** Writes `text` (one or more lines) with a newline, and follows it until the OS has taken it. */
  write(text: string, reported?: Reported): void;
  /** Follows `text`, just written with a newline by someone else, until the OS has taken it. */
  track(text: string, reported?: Reported): void;
  /** Whether the reader is so far behind that further reports would only pile up in memory. */
  congested(): boolean;
  /**
   * Waits for what was written to reach the OS while the reader keeps taking it; resolves to how many drops were
   * written but never taken (0 when the reader left, which ends a run by design).
   */
  settle(timers?: Timers, now?: () => number): Promise<number>;
  release(): void;
}

/** A failed write to standard output, as the one line the run ends with. */
export function stdoutFailure(err: unknown): DropwatchError {
  return new DropwatchError('E_IO', `cannot write standard output: ${errnoText(err)}`, { cause: err });
}

/** Writes through the stream's own `write` with a completion callback. */
export type WriteText = (text: string, done: (err?: Error | null) => void) => void;

/**
 * Writes `text` and waits until it is out: null when it was written, or when the reader left (EPIPE ends a program
 * quietly); else the failure to report (a full disk), so a program that only prints does not exit 0 having printed
 * nothing.
 */
export function writeOut(write: WriteText, text: string): Promise<DropwatchError | null> {
  return new Promise((resolve) =>
    write(text, (err) => resolve(err && (err as NodeJS.ErrnoException).code !== 'EPIPE' ? stdoutFailure(err) : null)),
  );
}

/** `stream.write` as a WriteText; the 'error' event that follows a failed write is the callback's to report. */
export function streamWrite(stream: Writable): WriteText {
  return (text, done) => {
    const ignore = () => {};
    stream.on('error', ignore);
    stream.write(text, (err) => {
      // The stream emits 'error' after the callback: the listener stays until then, so it is never thrown.
      setImmediate(() => stream.off('error', ignore));
      done(err);
    });
  };
}

/** Help, the version or a list on `stdout`: 0 once written, or the failed write thrown as the run's error. */
export async function printOnly(stdout: Writable, text: string): Promise<number> {
  const failure = await writeOut(streamWrite(stdout), text);
  if (failure) throw failure;
  return 0;
}

/** POSIX's bound for a pipe write the kernel takes whole or not at all (Linux: a page). */
export const PIPE_BUF = 4096;

/**
 * Watches stdout for the reader leaving (`| head`) or a failed write: either ends the run, restoring the kernel's state.
 * With `chunk` (a pipe: PIPE_BUF), what the guard writes goes out in whole lines of at most that many bytes, one write
 * at a time, so a reader that stalls finds whole lines when the run ends, never half a JSON object.
 */
export function guardStdout(
  stdout: Writable,
  watch?: (onGone: () => void) => (() => void) | null,
  limit = BACKLOG_LIMIT,
  chunk: number | null = null,
): StdoutGuard {
  return new GuardedStdout(stdout, watch, limit, chunk);
}

class GuardedStdout implements StdoutGuard {
  private isOpen = true;
  private failed: DropwatchError | null = null;
  private closed: () => void = () => {};
  /** What was handed to the stream and not yet taken by the OS. */
  private readonly ledger = createLedger();
  /** Chunks not yet handed to the stream (chunked writing only), oldest from `head`, and their string length. */
  private queue: (Piece | undefined)[] = [];
  private head = 0;
  private queuedLength = 0;
  /** Waiting for everything queued to be handed over and written. */
  private waiters: (() => void)[] = [];
  private readonly unwatch: (() => void) | null;

  constructor(
    private readonly stdout: Writable,
    watch: ((onGone: () => void) => (() => void) | null) | undefined,
    private readonly limit: number,
    private readonly chunk: number | null,
  ) {
    stdout.on('error', this.onError);
    // The reader may leave while there is nothing to print (no drops): a write would be the only other way to know.
    this.unwatch = watch?.(() => this.onError(Object.assign(new Error('reader gone'), { code: 'EPIPE' }))) ?? null;
  }

  get open(): boolean {
    return this.isOpen;
  }

  get failure(): DropwatchError | null {
    return this.failed;
  }

  onClosed(fn: () => void): void {
    this.closed = fn;
  }

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    // The first error is the cause; writes queued behind it only report the stream is gone.
    if (!this.isOpen) return;
    this.isOpen = false;
    if (err.code !== 'EPIPE') this.failed = stdoutFailure(err);
    for (const w of this.waiters.splice(0)) w();
    this.closed();
  };

  write(text: string, reported: Reported = NOTHING): void {
    if (!this.isOpen) return;
    if (this.chunk === null) {
      this.stdout.write(`${text}\n`);
      this.track(text, reported);
      return;
    }
    for (const piece of chunksOf(text, reported, this.chunk)) {
      this.queue.push(piece);
      this.queuedLength += piece.text.length + 1;
    }
    this.handOver();
  }

  track(text: string, reported: Reported = NOTHING): void {
    if (!this.isOpen) return;
    this.ledger.add(text, reported);
    // Write callbacks run in order: this one runs once `text` is out.
    this.stdout.write('', () => this.ledger.taken());
  }

  /** Hands queued chunks to the stream while it has taken everything before them, so one at most is in flight. */
  private readonly handOver = (): void => {
    while (this.isOpen && this.head < this.queue.length && this.stdout.writableLength === 0) {
      const piece = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      this.queuedLength -= piece.text.length + 1;
      this.ledger.add(piece.text, piece.reported);
      this.stdout.write(`${piece.text}\n`, this.chunkTaken);
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      for (const w of this.waiters.splice(0)) this.stdout.write('', () => w());
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  };

  private readonly chunkTaken = (): void => {
    this.ledger.taken();
    this.handOver();
  };

  congested(): boolean {
    return this.isOpen && this.stdout.writableLength + this.queuedLength >= this.limit;
  }

  /** Resolves once everything written so far has reached the OS (or the stream failed). */
  private written(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.isOpen) resolve();
      else if (this.head < this.queue.length) this.waiters.push(resolve);
      else this.stdout.write('', () => resolve());
    });
  }

  async settle(timers: Timers = realTimers, now: () => number = Date.now): Promise<number> {
    if (!this.isOpen) return 0;
    const pending = () => this.stdout.writableLength + this.queuedLength;
    const out =
      pending() === 0 || (await untilTaken(pending, () => this.stdout.destroyed, this.written(), timers, now));
    if (out || !this.isOpen) return 0;
    let queuedDrops = 0;
    for (let i = this.head; i < this.queue.length; i++) queuedDrops += this.queue[i]!.reported.drops;
    return queuedDrops + this.ledger.untaken(this.stdout.writableLength, queuedBytes(this.stdout));
  }

  release(): void {
    this.unwatch?.();
    this.stdout.off('error', this.onError);
    // Writes queued to a dead pipe may still report; keep them from becoming an uncaught 'error'.
    if (!this.isOpen) this.stdout.on('error', () => {});
  }
}

/**
 * `text` (lines, without the last newline) cut at line ends into chunks of at most `max` bytes with their newline;
 * a longer line is a chunk of its own. Each chunk carries the drops whose text ends in it (all of them in the last,
 * when `reported` does not say where each ends), with ends relative to the chunk.
 */
export function chunksOf(text: string, reported: Reported, max: number): Piece[] {
  const ascii = !/[^\x00-\x7f]/.test(text);
  const { ends } = reported;
  const chunks: Piece[] = [];
  let start = 0;
  let bytes = 0;
  let drop = 0;
  /** Ends the chunk at `end`, where its newline goes. */
  const close = (end: number) => {
    const own: number[] = [];
    while (ends !== undefined && drop < ends.length && ends[drop]! <= end) own.push(ends[drop++]! - start);
    const drops = ends !== undefined ? own.length : end === text.length ? reported.drops : 0;
    chunks.push({ text: text.slice(start, end), reported: ends !== undefined ? { drops, ends: own } : { drops } });
    start = end + 1;
    bytes = 0;
  };
  for (let lineStart = 0; ;) {
    const newline = text.indexOf('\n', lineStart);
    const end = newline < 0 ? text.length : newline;
    const size = (ascii ? end - lineStart : Buffer.byteLength(text.slice(lineStart, end))) + 1;
    if (bytes > 0 && bytes + size > max) close(lineStart - 1);
    bytes += size;
    if (newline < 0) break;
    lineStart = newline + 1;
  }
  close(text.length);
  return chunks;
}

/**
 * Waits until what was written to `stream` has reached the OS, while its reader keeps taking it: gives up after
 * STALL_MS without progress, or SETTLE_MAX_MS in all. Resolves to whether everything got out.
 */
export function whileTaken(
  stream: Writable,
  timers: Timers = realTimers,
  now: () => number = Date.now,
): Promise<boolean> {
  if (stream.destroyed || stream.writableLength === 0) return Promise.resolve(true);
  // Write callbacks run in order, so this one runs once everything before it is out.
  const written = new Promise<void>((resolve) => stream.write('', () => resolve()));
  return untilTaken(
    () => stream.writableLength,
    () => stream.destroyed,
    written,
    timers,
    now,
  );
}

/** Resolves true once `written` does, false once `pending` bytes made no progress for STALL_MS, or after SETTLE_MAX_MS. */
function untilTaken(
  pending: () => number,
  gone: () => boolean,
  written: Promise<void>,
  timers: Timers,
  now: () => number,
): Promise<boolean> {
  return new Promise((resolve) => {
    const started = now();
    let last = pending();
    let lastProgress = started;
    let timer: unknown = null;
    let done = false;
    const finish = (out: boolean) => {
      if (done) return;
      done = true;
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
      resolve(out);
    };
    const check = () => {
      timer = null;
      const t = now();
      const left = pending();
      if (left < last) lastProgress = t;
      last = left;
      if (gone() || t - lastProgress >= STALL_MS || t - started >= SETTLE_MAX_MS) finish(false);
      else timer = timers.setTimeout(check, 50);
    };
    void written.then(() => finish(true));
    timer = timers.setTimeout(check, 50);
  });
}

/** Bytes of the write in progress that the OS has not taken yet (libuv's queue), when the stream can tell. */
function queuedBytes(stream: Writable): number | null {
  const size = (stream as { _handle?: { writeQueueSize?: unknown } })._handle?.writeQueueSize;
  return typeof size === 'number' ? size : null;
}

interface Piece {
  text: string;
  reported: Reported;
}

/** Drop reports written to stdout and not yet taken by the OS, oldest first. */
export function createLedger() {
  let pieces: (Piece | undefined)[] = [];
  let head = 0;
  /** String length of the pieces in flight, newlines included: what Node's writableLength counts for them. */
  let length = 0;
  return {
    add(text: string, reported: Reported): void {
      pieces.push({ text, reported });
      length += text.length + 1;
    },
    /** The oldest piece has reached the OS. */
    taken(): void {
      const piece = pieces[head];
      // Let go of the text at once: the slots before `head` wait for the next compaction.
      pieces[head++] = undefined;
      if (piece) length -= piece.text.length + 1;
      if (head > 1024 && head * 2 > pieces.length) {
        pieces = pieces.slice(head);
        head = 0;
      }
    },
    /**
     * Drops in the pieces still in flight that never reached the OS. The oldest piece may be partly out: when every
     * byte queued is ours (`writableLength`) and the stream says how much of the write in progress is left
     * (`queued`), the drops whose whole text is out count as written.
     */
    untaken(writableLength: number, queued: number | null): number {
      let drops = 0;
      for (let i = head; i < pieces.length; i++) drops += pieces[i]!.reported.drops;
      const oldest = pieces[head];
      if (oldest === undefined || queued === null || writableLength !== length) return drops;
      return drops - writtenOf(oldest, queued);
    },
  };
}

/** Drops of a piece whose text is wholly out when `queued` of its bytes (newline included) are still to go. */
export function writtenOf(piece: Piece, queued: number): number {
  const { text, reported } = piece;
  const out = Buffer.byteLength(text) + 1 - queued;
  if (out <= 0) return 0;
  if (reported.ends === undefined) return queued === 0 ? reported.drops : 0;
  let written = 0;
  // A drop's text counts once the byte after it (separator or final newline) is out too: a line cut short is not one.
  for (const end of reported.ends) {
    if (Buffer.byteLength(text.slice(0, end)) + 1 > out) break;
    written++;
  }
  return written;
}

/**
 * The prompt's output, with its drop reports counted and held back when stdout's reader falls behind. `reportsOnly`:
 * stdout carries nothing but the reports (JSON at a prompt not on a terminal), so the guard writes them itself.
 */
export function promptOutput(output: SessionOutput, stdout: StdoutGuard, reportsOnly = false): SessionOutput {
  return {
    ...output,
    data: reportsOnly
      ? (line, reported) => stdout.write(line, reported)
      : (line, reported) => {
          output.data(line);
          stdout.track(line, reported);
        },
    congested: () => stdout.congested(),
  };
}

/** With -s, stdout carries drop reports only; everything else goes to stderr. */
export function reportsOnly(err: Writable, stdout: StdoutGuard): SessionOutput {
  return {
    data: (line, reported) => stdout.write(line, reported),
    message: (line) => err.write(`${line}\n`),
    error: (line) => err.write(`${line}\n`),
    congested: () => stdout.congested(),
  };
}
