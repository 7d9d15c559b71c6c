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
  /** Follows `text`, just written with a newline, until the OS has taken it, so what it reports can be counted. */
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

/** Watches stdout for the reader leaving (`| head`) or a failed write: either ends the run, restoring the kernel's state. */
export function guardStdout(
  stdout: Writable,
  watch?: (onGone: () => void) => (() => void) | null,
  limit = BACKLOG_LIMIT,
): StdoutGuard {
  let open = true;
  let failure: DropwatchError | null = null;
  let closed: () => void = () => {};
  const ledger = createLedger();
  const onError = (err: NodeJS.ErrnoException) => {
    // The first error is the cause; writes queued behind it only report the stream is gone.
    if (!open) return;
    open = false;
    if (err.code !== 'EPIPE') failure = stdoutFailure(err);
    closed();
  };
  stdout.on('error', onError);
  // The reader may leave while there is nothing to print (no drops): a write would be the only other way to know.
  const unwatch = watch?.(() => onError(Object.assign(new Error('reader gone'), { code: 'EPIPE' }))) ?? null;

  const settle = async (timers: Timers = realTimers, now: () => number = Date.now): Promise<number> => {
    if (!open) return 0;
    const out = await whileTaken(stdout, timers, now);
    return out || !open ? 0 : ledger.untaken(stdout.writableLength, queuedBytes(stdout));
  };

  return {
    get open() {
      return open;
    },
    get failure() {
      return failure;
    },
    onClosed: (fn) => (closed = fn),
    track: (text, reported = NOTHING) => {
      if (!open) return;
      ledger.add(text, reported);
      // Write callbacks run in order: this one runs once `text` is out.
      stdout.write('', () => ledger.taken());
    },
    congested: () => open && stdout.writableLength >= limit,
    settle,
    release: () => {
      unwatch?.();
      stdout.off('error', onError);
      // Writes queued to a dead pipe may still report; keep them from becoming an uncaught 'error'.
      if (!open) stdout.on('error', () => {});
    },
  };
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
  return new Promise((resolve) => {
    const started = now();
    let last = stream.writableLength;
    let lastProgress = started;
    let timer: unknown = null;
    const finish = (out: boolean) => {
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
      resolve(out);
    };
    const check = () => {
      timer = null;
      const t = now();
      const left = stream.writableLength;
      if (left < last) lastProgress = t;
      last = left;
      if (stream.destroyed || t - lastProgress >= STALL_MS || t - started >= SETTLE_MAX_MS) finish(false);
      else timer = timers.setTimeout(check, 50);
    };
    // Write callbacks run in order, so this one runs once everything before it is out.
    stream.write('', () => finish(true));
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

/** The prompt's output, with its drop reports counted and held back when stdout's reader falls behind. */
export function promptOutput(output: SessionOutput, stdout: StdoutGuard): SessionOutput {
  return {
    ...output,
    data: (line, reported) => {
      output.data(line);
      stdout.track(line, reported);
    },
    congested: () => stdout.congested(),
  };
}

/** With -s, stdout carries drop reports only; everything else goes to stderr. */
export function reportsOnly(out: Writable, err: Writable, stdout: StdoutGuard): SessionOutput {
  return {
    data: (line, reported) => {
      if (!stdout.open) return;
      out.write(`${line}\n`);
      stdout.track(line, reported);
    },
    message: (line) => err.write(`${line}\n`),
    error: (line) => err.write(`${line}\n`),
    congested: () => stdout.congested(),
  };
}
