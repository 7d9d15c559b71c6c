// Reads the CLI's text output back into numbers: summary lines for the drops we made, everything else separately.
import { readdirSync, rmdirSync } from 'node:fs';

const SUMMARY = /^(\d+) drops at (\S+) \((0x[0-9a-f]+)\) \[software\](?: (\S+))?$/;
const UNLISTED = /^(\d+) drops at \d+\+? more locations not listed/;
const LOST = /^Lost (\d+) drop events before they reached dropwatch/;

export interface DropwatchCounts {
  /** NO_SOCKET drops at __udp4_lib_rcv: what our sender makes (other users of this kernel can add a few, see foreign). */
  ours: number;
  /** Drops at any other location or reason, seen because the tracepoint is not namespace-aware. */
  foreign: number;
  /** Drops the aggregator could only tally (over its location cap): counted but not attributed. */
  unlisted: number;
  /** Drops the CLI reported as lost (ring-buffer overrun or reader backlog). */
  lost: number;
  /** Summary lines printed. */
  lines: number;
}

export function countDropwatchOutput(stdout: string, stderr: string): DropwatchCounts {
  const c: DropwatchCounts = { ours: 0, foreign: 0, unlisted: 0, lost: 0, lines: 0 };
  for (const raw of `${stdout}\n${stderr}`.split('\n')) {
    // The prompt can share a line with the first output after it.
    const line = raw.replace(/^(dropwatch> )+/, '');
    let m = SUMMARY.exec(line);
    if (m) {
      c.lines++;
      const n = Number(m[1]);
      if (m[2]!.startsWith('__udp4_lib_rcv+') && m[4] === 'NO_SOCKET') c.ours += n;
      else c.foreign += n;
      continue;
    }
    if ((m = UNLISTED.exec(line))) {
      c.unlisted += Number(m[1]);
      continue;
    }
    if ((m = LOST.exec(line))) c.lost += Number(m[1]);
  }
  return c;
}

export const TRACEFS = '/sys/kernel/tracing';

/** Removes a monitor's tracefs instance if it was left behind; returns true if there was one (a bug to report). */
export function reapInstance(name: string): boolean {
  let present = false;
  try {
    present = readdirSync(`${TRACEFS}/instances`).includes(name);
  } catch {
    return false;
  }
  if (present) {
    try {
      rmdirSync(`${TRACEFS}/instances/${name}`);
    } catch {
      // Still held open by a process; the next dropwatch start reclaims instances of dead pids.
    }
  }
  return present;
}
