// Notices the reader of a pipe or socket going away while we have nothing to write: `dropwatch -s | head -1` with no
// more drops would otherwise run on until its next line fails with EPIPE.
import { fstatSync } from 'node:fs';
import { loadAddon } from './addon.js';

interface HangupWatchAddon {
  HangupWatch?: new (fd: number, callback: (err: Error | null) => void) => { close(): void };
}

/** Stops watching; idempotent. */
export type StopWatching = () => void;

/**
 * Calls `onGone` once, soon after the far end of `fd` goes away: no reader left on a pipe, a socket closed by its
 * peer. Returns null when there is nothing to watch (a file or a terminal: a terminal's hangup is SIGHUP) or when
 * the addon cannot watch; the next write still finds out then.
 */
export function watchHangup(fd: number, onGone: () => void): StopWatching | null {
  try {
    const st = fstatSync(fd);
    if (!st.isFIFO() && !st.isSocket()) return null;
    const { HangupWatch } = loadAddon().addon as HangupWatchAddon;
    if (!HangupWatch) return null;
    let watching = true;
    const watch = new HangupWatch(fd, (err) => {
      // A failed poll (never seen) only means we cannot tell early.
      if (watching && err === null) onGone();
    });
    return () => {
      if (!watching) return;
      watching = false;
      watch.close();
    };
  } catch {
    return null;
  }
}
