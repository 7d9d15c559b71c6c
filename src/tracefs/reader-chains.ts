// The reader thread's side of the chain instance: opens and closes its gate (the event filter) as ChainGate says,
// takes kernel-filter changes from the main thread, and knows when the instance may still hold chains to read.
import fs from 'node:fs';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { ReaderCore } from './reader-core.js';
import { ChainGate, OPEN_GATE_POLL_MS } from './reader-policy.js';
import type { ChainInit, ReaderCommand, ReaderMessage } from './reader-protocol.js';

/** CLOCK_MONOTONIC in milliseconds: the clock of the instances' 'mono' trace clock, so seconds line up. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

export class ChainSwitch {
  private readonly gate: ChainGate;
  private filter: string | null;
  private open = false;
  private stopped = false;
  /** The gate was open since the instance was last read empty: there may be chains to read. */
  private unread = false;
  /** Drops counted at the last look: while none come, an open gate costs nothing and needs no closer watch. */
  private dropsSeen = 0;

  constructor(
    readonly init: ChainInit,
    private readonly core: ReaderCore,
    private readonly port: MessagePort,
  ) {
    this.gate = new ChainGate(init.budget);
    this.filter = init.filter;
  }

  /** Takes filter changes, then opens or closes the gate as due; returns ms until it needs another look. */
  tend(nowMs: number): number {
    this.takeCommands();
    if (this.stopped) return Number.POSITIVE_INFINITY;
    const { drops } = this.core;
    const state = this.gate.at(nowMs, drops, this.core.chainsKeptIn(Math.floor(nowMs / 1000)));
    if (state.open !== this.open) this.write(state.open);
    const flowing = drops !== this.dropsSeen;
    this.dropsSeen = drops;
    return this.open && flowing ? Math.min(state.inMs, OPEN_GATE_POLL_MS) : state.inMs;
  }

  /** Whether the chain instance is worth reading now. */
  get worthReading(): boolean {
    return this.open || this.unread;
  }

  /** After reading the chain instance: nothing more to read until the gate opens again when it came back empty. */
  readDone(empty: boolean): void {
    if (empty && !this.open) this.unread = false;
  }

  /** Closes the gate for good (the run is stopping). */
  stop(): void {
    if (this.open) this.write(false);
    this.stopped = true;
  }

  private write(open: boolean): void {
    try {
      fs.writeFileSync(this.init.filterPath, open ? (this.filter ?? '0') : this.init.closedFilter);
      this.open = open;
      if (open) this.unread = true;
    } catch (err) {
      // Counting goes on without chains; the main thread says so once.
      this.stopped = true;
      const message = `call chains stopped: ${(err as Error).message}`;
      this.port.postMessage({ type: 'error', fatal: false, message } satisfies ReaderMessage);
    }
  }

  private takeCommands(): void {
    for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
      const command = m.message as ReaderCommand;
      if (command.type !== 'filter') continue;
      this.filter = command.filter;
      if (this.open) this.write(true);
    }
  }
}
