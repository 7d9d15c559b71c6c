// A throwaway network namespace with lo up: the benchmarks' (and the tests') datagrams never leave it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export class BenchNetns {
  readonly name: string;
  private deleted = false;
  /** `prefix` names who made it, so a leftover says where it came from. */
  constructor(prefix = 'dwbench') {
    this.name = `${prefix}-${randomBytes(4).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', this.name]);
    try {
      execFileSync('ip', ['netns', 'exec', this.name, 'ip', 'link', 'set', 'lo', 'up']);
    } catch (err) {
      this.delete();
      throw err;
    }
    // Ctrl-C or an exception must not leave the namespace behind.
    process.once('exit', () => this.delete());
  }
  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
  }
}
