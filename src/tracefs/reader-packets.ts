// The tracefs reader's packet-mode batch: records held in typed arrays (moved, not copied, to the main thread) until
// taken, up to a bound past which the reader counts them as backlog loss. Pure.
import type { PacketBatch } from './reader-protocol.js';

/** Starting size of the batch; it grows fourfold up to the bound. */
const INITIAL_PENDING = 4096;

export class PendingPackets {
  private held = 0;
  private capacity: number;
  private ts: BigUint64Array;
  private loc: BigUint64Array;
  private reasonProtocolPairs: Uint32Array;
  private pids: Int32Array;
  /** Each record's CPU index: kept here only, to find a record again (findDrop), never sent. */
  private cpus: Uint16Array;
  private stacks: [number, BigUint64Array][] = [];

  constructor(private readonly maxPending: number) {
    this.capacity = Math.min(maxPending, INITIAL_PENDING);
    this.ts = new BigUint64Array(this.capacity);
    this.loc = new BigUint64Array(this.capacity);
    this.reasonProtocolPairs = new Uint32Array(this.capacity * 2);
    this.pids = new Int32Array(this.capacity);
    this.cpus = new Uint16Array(this.capacity);
  }

  /** Records held now, not yet taken. */
  get count(): number {
    return this.held;
  }

  /** Whether one more record fits, growing the arrays if the bound allows. */
  makeRoom(): boolean {
    if (this.held < this.capacity) return true;
    if (this.capacity >= this.maxPending) return false;
    this.capacity = Math.min(this.maxPending, this.capacity * 4);
    const ts = new BigUint64Array(this.capacity);
    ts.set(this.ts);
    this.ts = ts;
    const loc = new BigUint64Array(this.capacity);
    loc.set(this.loc);
    this.loc = loc;
    const reasonProtocolPairs = new Uint32Array(this.capacity * 2);
    reasonProtocolPairs.set(this.reasonProtocolPairs);
    this.reasonProtocolPairs = reasonProtocolPairs;
    const pids = new Int32Array(this.capacity);
    pids.set(this.pids);
    this.pids = pids;
    const cpus = new Uint16Array(this.capacity);
    cpus.set(this.cpus);
    this.cpus = cpus;
    return true;
  }

  /** Appends a record read from the CPU at `cpuIndex`; call makeRoom() first. */
  push(cpuIndex: number, ts: bigint, loc: bigint, reason: number, protocol: number, pid: number): void {
    const i = this.held;
    this.cpus[i] = cpuIndex;
    this.ts[i] = ts;
    this.loc[i] = loc;
    this.reasonProtocolPairs[i * 2] = reason;
    this.reasonProtocolPairs[i * 2 + 1] = protocol;
    this.pids[i] = pid;
    this.held = i + 1;
  }

  /**
   * The held record of this drop, as another instance recorded it at `ts`: same CPU, location, reason and task, the
   * nearest in time within `windowNs`; -1 when there is none (not read yet, or already taken).
   */
  findDrop(cpuIndex: number, ts: bigint, loc: bigint, reason: number, pid: number, windowNs: bigint): number {
    let best = -1;
    let bestGap = windowNs + 1n;
    // A CPU's records are held in the order of its time: walk back until that CPU's records are too old.
    for (let i = this.held - 1; i >= 0; i--) {
      if (this.cpus[i] !== cpuIndex) continue;
      const t = this.ts[i]!;
      if (t + windowNs < ts) break;
      const gap = t > ts ? t - ts : ts - t;
      if (gap < bestGap && this.loc[i] === loc && this.reasonProtocolPairs[i * 2] === reason && this.pids[i] === pid) {
        best = i;
        bestGap = gap;
      }
    }
    return best;
  }

  /** The call chain of the record at `index` (as counted since the last take). */
  addStack(index: number, callers: BigUint64Array): void {
    this.stacks.push([index, callers]);
  }

  /** The records since the last take (fresh arrays, transferable); null when there were none. */
  take(): PacketBatch | null {
    const count = this.held;
    if (count === 0) return null;
    const batch: PacketBatch = {
      type: 'packets',
      count,
      ts: this.ts.slice(0, count),
      loc: this.loc.slice(0, count),
      reasonProtocolPairs: this.reasonProtocolPairs.slice(0, count * 2),
      pid: this.pids.slice(0, count),
      stacks: this.stacks.length > 0 ? this.stacks : null,
    };
    this.held = 0;
    this.stacks = [];
    return batch;
  }
}
