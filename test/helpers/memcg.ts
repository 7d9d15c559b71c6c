// A cgroup v1 memory cgroup made for one test: a memory limit, the charge it saw, and a command prefix that runs a
// program inside it from its first instruction.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEST_PREFIX } from './kernel.js';
import { integrationOnly } from './suite.js';

integrationOnly('test/helpers/memcg.ts (root, cgroup v1 memory controller)');

const V1_MEMORY = '/sys/fs/cgroup/memory';

/** Why memory cgroup tests cannot run here, or false. */
export function canUseMemoryCgroups(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync(join(V1_MEMORY, 'memory.limit_in_bytes'))) return 'needs the cgroup v1 memory controller';
  return false;
}

let made = 0;

export class MemoryCgroup {
  /** Its path as /proc/PID/cgroup shows it, e.g. /dwtest-memcg-123-1. */
  readonly name: string;
  readonly dir: string;

  constructor() {
    this.name = `/${TEST_PREFIX}-memcg-${process.pid}-${++made}`;
    this.dir = join(V1_MEMORY, this.name);
    mkdirSync(this.dir);
  }

  private read(file: string): number {
    return Number(readFileSync(join(this.dir, file), 'utf8').trim());
  }

  /** bytes; set -1 for none. */
  get limit(): number {
    return this.read('memory.limit_in_bytes');
  }

  set limit(bytes: number) {
    writeFileSync(join(this.dir, 'memory.limit_in_bytes'), String(bytes));
  }

  /** Tasks that reach the limit wait for room instead of being killed (allocations that may fail still fail). */
  waitAtLimit(): void {
    writeFileSync(join(this.dir, 'memory.oom_control'), '1');
  }

  /** Whether a task waits at the limit (after waitAtLimit()). */
  get waiting(): boolean {
    return /^under_oom 1$/m.test(readFileSync(join(this.dir, 'memory.oom_control'), 'utf8'));
  }

  /** The highest charge seen, bytes. */
  get maxUsage(): number {
    return this.read('memory.max_usage_in_bytes');
  }

  /** How often a charge hit the limit. */
  get failures(): number {
    return this.read('memory.failcnt');
  }

  /** A command prefix: the shell moves itself into this cgroup, then becomes the command that follows. */
  get prefix(): string[] {
    return ['sh', '-c', 'echo $$ > "$0" && exec "$@"', join(this.dir, 'cgroup.procs')];
  }

  /** Removes it once its last task is gone (an exiting task can trail its parent's wait a little). */
  async delete(): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        rmdirSync(this.dir);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EBUSY' || i >= 100) throw err;
        await sleep(50);
      }
    }
  }
}
