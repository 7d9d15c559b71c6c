// What every dwdump capture shares, whichever source fills it: how a run ends (the first of a signal, the reader
// leaving, an error) and the snap length its pcap announces.
import { DropwatchError, isExpected } from '../errors/index.js';
import type { SignalName, SignalSource } from '../process/signals.js';
import type { WriteText } from '../output/stdout.js';
import { OutputClosedError } from './output.js';

/** Room for the attributes around the payload, as dwdump sizes its snaplen (truncation length + 2048). */
export const SNAPLEN_SLACK = 2048;

export type Ending =
  { kind: 'signal'; signal: SignalName } | { kind: 'pipe' } | { kind: 'error'; error: DropwatchError };

/** How a capture ends: the first of a signal, the reader leaving, or an error; later ones are ignored. */
export interface Endings {
  readonly ended: Promise<Ending>;
  end(e: Ending): void;
  current(): Ending | null;
}

export function endings(): Endings {
  let finish!: (e: Ending) => void;
  const ended = new Promise<Ending>((resolve) => (finish = resolve));
  let ending: Ending | null = null;
  return {
    ended,
    end: (e) => {
      if (ending) return;
      ending = e;
      finish(e);
    },
    current: () => ending,
  };
}

/** Whatever stops a write (the reader gone, a full disk) ends the run; errors the caller does not expect propagate. */
export function endOnFailure(err: unknown, run: Endings): void {
  if (err instanceof OutputClosedError) run.end({ kind: 'pipe' });
  else if (isExpected(err)) run.end({ kind: 'error', error: err });
  else throw err;
}

export interface ExitHooks {
  on(event: 'exit', listener: () => void): unknown;
  off(event: 'exit', listener: () => void): unknown;
}

export interface DwdumpIO {
  /**
   * Text for standard output (-q, -s, --help), `done` called once it is out or failed; never used while capturing,
   * when standard output is the pcap.
   */
  out: WriteText;
  err(text: string): void;
  /** Standard output's descriptor, written directly when capturing to it. */
  stdoutFd?: number;
  signals: SignalSource;
  /** Where the last-resort synchronous STOP hooks in (process 'exit'). */
  exitHooks?: ExitHooks;
  /** Calls `onGone` when the reader of standard output goes away; returns how to stop, or null (nothing to watch). */
  watchStdout?: (onGone: () => void) => (() => void) | null;
  now?: () => number;
}
