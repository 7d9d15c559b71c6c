// The tracefs reader's per-CPU loss ledger: ring-buffer overruns, its own packet backlog, and records the kernel handed
// over that never became a drop, each reported as it grows. Pure.
import { DropwatchError } from '../errors/index.js';
import { lostFromStats, type CpuStats } from './format.js';
import type { LostReport } from './reader-protocol.js';

export class LossLedger {
  /** Packet-mode records not kept because the batch was full, per CPU index; the reader counts them. */
  readonly backlog: number[];
  /** Records that became drops (aggregated or queued), per CPU index: the kernel's `read events` less these were lost. */
  readonly delivered: number[];
  private readonly ring: number[];
  private readonly pageMissed: number[];
  private readonly undecoded: number[];
  private readonly reported: { ring: number; backlog: number; undecoded: number }[];

  /** `cpus`: CPU numbers; index i is the CPU index of the counts and the i-th entry of take()'s stats. */
  constructor(private readonly cpus: readonly number[]) {
    const zeros = (): number[] => Array.from({ length: cpus.length }, () => 0);
    this.ring = zeros();
    this.pageMissed = zeros();
    this.backlog = zeros();
    this.delivered = zeros();
    this.undecoded = zeros();
    this.reported = Array.from({ length: cpus.length }, () => ({ ring: 0, backlog: 0, undecoded: 0 }));
  }

  /** A page header's count of the records lost before it. */
  addPageMissed(cpuIndex: number, count: number): void {
    this.pageMissed[cpuIndex]! += count;
  }

  /**
   * Folds in each CPU's stats (null: unreadable) and returns the CPUs whose cumulative loss grew since the last
   * report.
   */
  take(stats: readonly (CpuStats | null)[]): LostReport[] {
    const ncpu = this.cpus.length;
    if (stats.length !== ncpu)
      throw new DropwatchError('E_BAD_INPUT', `stats for ${stats.length} CPUs, reading ${ncpu}`);
    const { ring, pageMissed, backlog, delivered, undecoded } = this;
    const out: LostReport[] = [];
    for (let i = 0; i < ncpu; i++) {
      const s = stats[i] ?? null;
      // Page-header counts are derived from the same overrun counter, so the larger of the two is exact, not a sum.
      ring[i] = Math.max(ring[i]!, s ? lostFromStats(s) : 0, pageMissed[i]!);
      // The kernel counts every record our reads took (`read events`, whole and partial pages alike), and only this
      // reader reads: what it handed us and never became a drop (the rest of a page that failed to decode, a record
      // of the wrong shape) is the difference, exactly.
      if (s) undecoded[i] = Math.max(undecoded[i]!, s.readEvents - delivered[i]!);
      const r = this.reported[i]!;
      if (ring[i]! > r.ring || backlog[i]! > r.backlog || undecoded[i]! > r.undecoded) {
        r.ring = ring[i]!;
        r.backlog = backlog[i]!;
        r.undecoded = undecoded[i]!;
        out.push({ type: 'lost', cpu: this.cpus[i]!, ring: r.ring, backlog: r.backlog, undecoded: r.undecoded });
      }
    }
    return out;
  }
}
