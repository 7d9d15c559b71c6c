// Drives the built CLI as a user would: a child process with piped stdin, its output collected, signals sent.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectRoot } from './paths.js';
import { integrationOnly } from './suite.js';

integrationOnly('test/helpers/cli.ts (the built CLI)');

export const BIN = join(projectRoot, 'bin/dropwatch');
export const DWDUMP_BIN = join(projectRoot, 'bin/dwdump');

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class CliRun {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly done: Promise<Finished>;

  /** under: a command prefix the CLI runs inside (e.g. a shell that first joins a cgroup). */
  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}, under: readonly string[] = []) {
    const [command, ...rest] = [...under, process.execPath, BIN, ...args] as [string, ...string[]];
    this.child = spawn(command, rest, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', ...env },
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.done = new Promise((resolve) =>
      this.child.on('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr })),
    );
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }

  end(text?: string): void {
    this.child.stdin!.end(text);
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Resolves once ok() holds; rejects with everything seen so far if the process exits first or after timeoutMs. */
  async until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (this.child.exitCode !== null || Date.now() > deadline)
        throw new Error(`never saw ${what}\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`);
      await sleep(20);
    }
  }

  /** Resolves once stdout matches. */
  waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    return this.until(String(pattern), () => pattern.test(this.stdout), timeoutMs);
  }

  /** Resolves once the kernel is monitoring (the line goes to stdout at the prompt, to stderr with -s). */
  monitoring(timeoutMs = 10_000): Promise<void> {
    return this.until(
      'monitoring start',
      () => (this.stdout + this.stderr).includes('Kernel monitoring activated.'),
      timeoutMs,
    );
  }
}

/** Runs the CLI to completion with the given stdin. */
export function runCli(
  args: readonly string[],
  stdin = '',
  env: NodeJS.ProcessEnv = {},
  under: readonly string[] = [],
): Promise<Finished> {
  const run = new CliRun(args, env, under);
  run.end(stdin);
  return run.done;
}

/** dropwatch's summary line, as its printf makes it, with our reason suffix; returns [count, symbol, offset, address, reason]. */
export const SUMMARY_LINE = /^(\d+) drops at ([\w.]+)\+([0-9a-f]+) \((0x[0-9a-f]+)\) \[software\](?: (\w+))?$/;

/** Sums the counts of summary lines at `symbol` with `reason`. */
export function countDrops(stdout: string, symbol: string, reason: string): number {
  let total = 0;
  for (const line of stdout.split('\n')) {
    const m = SUMMARY_LINE.exec(line);
    if (m && m[2] === symbol && m[5] === reason) total += Number(m[1]);
  }
  return total;
}

/** Children of `pid`, from /proc (pgrep -P without a subprocess). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

/** The dropwatch process under `script` (script → maybe a shell → node bin/dropwatch). */
export function findDropwatch(root: number): number | null {
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    for (const child of childrenOf(pid)) {
      try {
        if (readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').includes(BIN)) return child;
      } catch {
        continue;
      }
      queue.push(child);
    }
  }
  return null;
}
