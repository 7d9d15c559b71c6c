// What the numbers were measured on: printed at the top of BENCHMARKS.md.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { which } from './proc.js';
import { projectRoot } from './root.js';

export interface Machine {
  nproc: number;
  model: string;
  kernel: string;
  node: string;
  memGiB: number;
  date: string;
  /** The commit measured, and which source paths had uncommitted changes (others work in the same tree). */
  git: string;
  tools: Record<string, string>;
}

function version(cmd: string, args: string[]): string {
  if (!which(cmd)) return 'not installed';
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .trim()
      .split('\n')[0]!;
  } catch {
    return 'installed (version unknown)';
  }
}

function gitState(): string {
  try {
    const opts = {
      encoding: 'utf8' as const,
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'],
    };
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin', 'native'], opts)
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
    return dirty.length === 0
      ? `commit ${head}, clean src/bin/native`
      : `commit ${head} plus uncommitted work in the shared tree: ${dirty.join(', ')}`;
  } catch {
    return 'not a git checkout';
  }
}

export function describeMachine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    nproc: os.cpus().length,
    model: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    kernel: os.release(),
    node: process.version,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    git: gitState(),
    tools: {
      perf: version('perf', ['--version']),
      bpftrace: version('bpftrace', ['--version']),
      hyperfine: version('hyperfine', ['--version']),
      python3: version('/usr/bin/python3', ['--version']),
    },
  };
}

/** Where a section run on its own was measured: the machine in one line, when, and the commit's short hash. */
export function provenance(): { machine: string; date: string; git: string } {
  const m = describeMachine();
  let git = 'unknown';
  try {
    git = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: projectRoot }).trim();
  } catch {
    // Not a checkout: the figures stand without it.
  }
  return { machine: `${m.nproc} × ${m.model}, kernel ${m.kernel}, node ${m.node}`, date: m.date, git };
}
