// Real-kernel test helpers: a throwaway network namespace, a UDP sender into it, and a snapshot of global tracefs state.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';

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

export class Netns {
  readonly name = `dwtest-${randomBytes(4).toString('hex')}`;
  constructor() {
    execFileSync('ip', ['netns', 'add', this.name]);
    try {
      execFileSync('ip', ['netns', 'exec', this.name, 'ip', 'link', 'set', 'lo', 'up']);
    } catch (err) {
      this.delete();
      throw err;
    }
  }
  /** Sends n datagrams to a closed UDP port (9) on host inside the namespace; resolves when the sender exits. */
  sendUdp(host: string, n: number): Promise<void> {
    const family = host.includes(':') ? 'udp6' : 'udp4';
    const code =
      `const s=require('dgram').createSocket('${family}');let i=0;` +
      `(function f(e){if(e)throw e;if(i++>=${n})return s.close();s.send('drop',9,'${host}',f)})()`;
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, '-e', code], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sender exited ${code}: ${err}`))));
    });
  }
  delete(): void {
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
  }
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

export function ourInstances(prefix = TEST_PREFIX): string[] {
  return fs.readdirSync(`${TRACEFS}/instances`).filter((n) => n.startsWith(`${prefix}-`));
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
