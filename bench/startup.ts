// Benchmark 2: time from exec to exit for `echo exit | dropwatch -l kas`, against a bare `node -e 0` measured in the
// same hyperfine invocation, seconds apart (hyperfine runs one command's runs, then the other's; it does not interleave).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { which } from './lib/proc.js';
import { dropwatchBin } from './lib/root.js';
import { median, sleep, spread, type Spread } from './lib/stats.js';

export interface StartupResult {
  tool: string;
  runs: number;
  /** Milliseconds. */
  dropwatch: Spread;
  node: Spread;
  /** bench/startup-floor.ts: commander and a readline prompt, none of our code (absent in runs before it existed). */
  floor?: Spread;
  /** Ratio of medians. */
  ratio: number;
  notes: string[];
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function runStartup(runs: number): Promise<StartupResult> {
  const node = process.execPath;
  const dw = `echo exit | ${shq(node)} ${shq(dropwatchBin)} -l kas`;
  const bare = `${shq(node)} -e 0`;
  const floorScript = fileURLToPath(new URL('./startup-floor.js', import.meta.url));
  const floor = `echo exit | ${shq(node)} ${shq(floorScript)} -l kas`;
  const notes: string[] = [];
  if (which('hyperfine')) {
    const dir = mkdtempSync(join(tmpdir(), 'dwbench-'));
    try {
      const json = join(dir, 'startup.json');
      const r = spawnSync(
        'hyperfine',
        ['--warmup', '3', '--runs', String(runs), '--style', 'none', '--export-json', json, dw, floor, bare],
        {
          encoding: 'utf8',
        },
      );
      if (r.status !== 0) throw new Error(`hyperfine failed: ${r.stderr}`);
      const results = (JSON.parse(readFileSync(json, 'utf8')) as { results: { times: number[] }[] }).results;
      const [a, f, b] = results.map((x) => x.times.map((t) => t * 1000));
      notes.push('hyperfine subtracts its measured shell start-up from every command');
      return mk('hyperfine', runs, a!, b!, f!, notes);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  // Fallback: our own alternating loop through sh, so both carry the same shell cost.
  notes.push('hyperfine not installed: own loop, every command through sh -c (shell start-up included in each)');
  const a: number[] = [];
  const b: number[] = [];
  const f: number[] = [];
  for (let i = 0; i < runs + 3; i++) {
    for (const [cmd, out] of [
      [dw, a],
      [floor, f],
      [bare, b],
    ] as const) {
      const t0 = process.hrtime.bigint();
      spawnSync('sh', ['-c', cmd], { stdio: 'ignore' });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (i >= 3) out.push(ms);
    }
    await sleep(10);
  }
  return mk('loop', runs, a, b, f, notes);
}

function mk(tool: string, runs: number, a: number[], b: number[], f: number[], notes: string[]): StartupResult {
  return { tool, runs, dropwatch: spread(a), node: spread(b), floor: spread(f), ratio: median(a) / median(b), notes };
}
