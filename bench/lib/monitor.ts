// Runs a monitor as a child process and measures it from outside: readiness from its output, CPU and peak RSS from
// /proc, and a clean SIGINT stop. Shared by the storm, soak and bpf benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpuMicros, peakRssKiB } from './proc.js';
import type { SendResult } from './sender.js';
import { sleep } from './stats.js';

export class MonitorProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  exited: Promise<number | null>;
  /** The signal that ended the process, if one did (perf re-raises SIGINT after writing its data). */
  signal: NodeJS.Signals | null = null;
  private exitCode: number | null | undefined;

  constructor(cmd: string, args: string[], opts: { stdin?: 'pipe' | 'ignore' } = {}) {
    this.child = spawn(cmd, args, { stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.stderr += String(e);
        this.exitCode = null;
        resolve(null);
      });
      this.child.on('exit', (code, signal) => {
        this.signal = signal;
        this.exitCode = code;
        resolve(this.exitCode);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }
  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Resolves true once `test` holds for the output seen so far, false if the process exits or time runs out. */
  async waitFor(test: () => boolean, timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (test()) return true;
      if (!this.running) return test();
      await sleep(20);
    }
    return test();
  }

  /**
   * Waits until the process stops using CPU (two 150 ms samples without a tick), so start-up work such as the
   * kallsyms parse is not billed to the drops. Returns the CPU reading at that point.
   */
  async settle(maxMs = 4000): Promise<number> {
    const end = Date.now() + maxMs;
    let last = cpuMicros(this.pid) ?? 0;
    let quiet = 0;
    while (Date.now() < end && quiet < 2) {
      await sleep(150);
      const now = cpuMicros(this.pid) ?? last;
      quiet = now === last ? quiet + 1 : 0;
      last = now;
    }
    return last;
  }

  cpu(): number | null {
    return cpuMicros(this.pid);
  }
  peakRss(): number | null {
    return peakRssKiB(this.pid);
  }

  /** SIGINT, then SIGKILL if it has not exited after `graceMs`; resolves with the exit code. */
  async interrupt(graceMs = 15000): Promise<number | null> {
    if (this.running) this.child.kill('SIGINT');
    const timer = setTimeout(() => {
      if (this.running) this.child.kill('SIGKILL');
    }, graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/**
 * One flood under a started monitor: its CPU from when it settles until `tailMs` after the sender ends (what it still
 * had to do), its peak RSS; then SIGINT.
 */
export async function measureFlood(
  m: MonitorProcess,
  send: () => Promise<SendResult>,
  tailMs = 300,
): Promise<{ send: SendResult; cpuUs: number; rss: number | null }> {
  const cpu0 = await m.settle();
  const sent = await send();
  await sleep(tailMs);
  const cpu1 = m.cpu() ?? cpu0;
  const rss = m.peakRss();
  await m.interrupt();
  return { send: sent, cpuUs: cpu1 - cpu0, rss };
}
