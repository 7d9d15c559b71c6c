// The real kernel under integration tests: can this machine run them, tracefs instances and state, symbol ranges.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { integrationOnly } from './suite.js';

integrationOnly('test/helpers/kernel.ts (root, tracefs)');

export const TRACEFS = '/sys/kernel/tracing';
export const TEST_PREFIX = 'dwtest';

export function canRunKernelTests(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  // A fresh boot may not have tracefs mounted; dropwatch mounts it itself, so the tests may too.
  if (!fs.existsSync(`${TRACEFS}/events`)) {
    try {
      execFileSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { stdio: 'ignore' });
    } catch {
      // Reported below as missing.
    }
  }
  if (!fs.existsSync(`${TRACEFS}/events/skb/kfree_skb/format`)) return 'needs tracefs with skb:kfree_skb';
  return false;
}

/** Global tracefs state our backend must never change. */
export function tracefsSnapshot(): Record<string, string> {
  const files = [
    'tracing_on',
    'current_tracer',
    'trace_clock',
    'buffer_size_kb',
    'set_event',
    'events/skb/kfree_skb/enable',
    'events/skb/kfree_skb/filter',
    'options/overwrite',
  ];
  const out: Record<string, string> = {};
  for (const f of files) out[f] = fs.readFileSync(`${TRACEFS}/${f}`, 'utf8');
  return out;
}

/** Instances whose names start with `<prefix>-` (the backend tests' own prefix by default). */
export function ourInstances(prefix = TEST_PREFIX): string[] {
  return fs.readdirSync(`${TRACEFS}/instances`).filter((n) => n.startsWith(`${prefix}-`));
}

/** Instances a dropwatch process with this pid would own: dropwatch-<pid>, or dropwatch-<pid>-<more>. */
export function instancesOf(pid: number | undefined): string[] {
  return fs
    .readdirSync(`${TRACEFS}/instances`)
    .filter((n) => n === `dropwatch-${pid}` || n.startsWith(`dropwatch-${pid}-`));
}

/** [start, end) of a kernel text symbol from /proc/kallsyms (first match), to check a pc lands inside it. */
export function symbolRange(name: string): [bigint, bigint] | null {
  const lines = fs.readFileSync('/proc/kallsyms', 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const [addr, , sym] = lines[i]!.split(/\s+/);
    if (sym !== name || !addr) continue;
    const start = BigInt('0x' + addr);
    // kallsyms is sorted by address only per section; take the next higher address as the end.
    let end = start + 0x10000n;
    for (let j = i + 1; j < lines.length && j < i + 50; j++) {
      const a = lines[j]!.split(/\s+/)[0];
      if (a && BigInt('0x' + a) > start) {
        end = BigInt('0x' + a);
        break;
      }
    }
    return [start, end];
  }
  return null;
}
