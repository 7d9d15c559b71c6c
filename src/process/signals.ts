// The process's stop signals, caught from the first moment and held until someone listens: both programs' shells use it.

export type SignalName = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/** The process's signals, or an EventEmitter in tests. */
export interface SignalSource {
  on(signal: SignalName, listener: () => void): unknown;
  off(signal: SignalName, listener: () => void): unknown;
}

/** The signals that end a run, each the same clean way. */
export const STOP_SIGNALS: readonly SignalName[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * The process's stop signals, caught from the first moment. The REPL and -s runs listen only once the backend is
 * open, and by then the kernel already holds our state (a tracefs instance, NET_DM monitoring): a signal in between
 * would kill us by its default action, skipping every cleanup. One that arrives while nobody listens is held and
 * given to the first listener for it, so it ends the run the same clean way as one that comes later.
 */
export function caughtSignals(): SignalSource {
  const listeners = new Map<SignalName, Set<() => void>>(STOP_SIGNALS.map((s) => [s, new Set()]));
  const held = new Set<SignalName>();
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      const current = [...listeners.get(signal)!];
      // Asked twice before anyone listened (start-up stuck, e.g. on the kernel): leave; the exit hooks still clean up.
      if (current.length === 0 && held.has(signal)) process.exit(0);
      if (current.length === 0) held.add(signal);
      for (const listener of current) listener();
    });
  }
  return {
    on(signal, listener) {
      listeners.get(signal)!.add(listener);
      if (held.delete(signal)) {
        // After the caller has finished registering (it may be adding its other handlers right after this one).
        setImmediate(() => {
          if (listeners.get(signal)!.has(listener)) listener();
        });
      }
    },
    off(signal, listener) {
      listeners.get(signal)!.delete(listener);
    },
  };
}
