// Benchmark 2: time from exec to exit for `echo exit | dropwatch -l kas` (the prompt) and `dropwatch --version`,
// against a bare `node -e 0` measured in the same hyperfine invocation, seconds apart (hyperfine runs one command's
// runs, then the next's; it does not interleave). With a base build the before and after run side by side, in rounds
// whose command order alternates, so a drift of the machine's load falls on both.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBase, removeBase, shq } from './lib/base-build.js';
import { which } from './lib/proc.js';
import { dropwatchBin } from './lib/root.js';
import { median, sleep, spread, type Spread } from './lib/stats.js';

/** One round's ratios of medians to `node -e 0`. */
export interface StartupRound {
  prompt: number;
  version: number;
  basePrompt?: number;
  baseVersion?: number;
}

export interface StartupResult {
  tool: string;
  /** Runs of each command per round. */
  runs: number;
  /** Milliseconds. */
  dropwatch: Spread;
  node: Spread;
  /** bench/startup-floor.ts: commander and a readline prompt, none of our code (absent in runs before it existed). */
  floor?: Spread;
  /** Ratio of medians. */
  ratio: number;
  /** `dropwatch --version`, and its ratio of medians (absent in runs before it was measured). */
  version?: Spread;
  versionRatio?: number;
  /** The same two commands on a build of another revision, in the same rounds (`--base REV`). */
  base?: { rev: string; commit: string; dropwatch: Spread; version: Spread; ratio: number; versionRatio: number };
  /** Each round's ratios (absent in runs of one round before rounds existed). */
  rounds?: StartupRound[];
  notes: string[];
}

interface Command {
  key: 'prompt' | 'version' | 'floor' | 'node' | 'basePrompt' | 'baseVersion';
  line: string;
}

function commands(node: string, base: string | null): Command[] {
  const floorScript = fileURLToPath(new URL('./startup-floor.js', import.meta.url));
  const list: Command[] = [
    { key: 'prompt', line: `echo exit | ${shq(node)} ${shq(dropwatchBin)} -l kas` },
    { key: 'version', line: `${shq(node)} ${shq(dropwatchBin)} --version` },
  ];
  if (base !== null)
    list.push(
      { key: 'basePrompt', line: `echo exit | ${shq(node)} ${shq(base)} -l kas` },
      { key: 'baseVersion', line: `${shq(node)} ${shq(base)} --version` },
    );
  list.push(
    { key: 'floor', line: `echo exit | ${shq(node)} ${shq(floorScript)} -l kas` },
    { key: 'node', line: `${shq(node)} -e 0` },
  );
  return list;
}

type Times = Map<Command['key'], number[]>;

/** One round with hyperfine: every command's runs, in the order given; milliseconds per command. */
function hyperfineRound(list: Command[], runs: number): Times {
  const dir = mkdtempSync(join(tmpdir(), 'dwbench-'));
  try {
    const json = join(dir, 'startup.json');
    const args = ['--warmup', '3', '--runs', String(runs), '--style', 'none', '--export-json', json];
    const r = spawnSync('hyperfine', [...args, ...list.map((c) => c.line)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`hyperfine failed: ${r.stderr}`);
    const results = (JSON.parse(readFileSync(json, 'utf8')) as { results: { times: number[] }[] }).results;
    return new Map(list.map((c, i) => [c.key, results[i]!.times.map((t) => t * 1000)]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One round without hyperfine: the commands alternate run by run, each through sh -c. */
async function ownLoopRound(list: Command[], runs: number): Promise<Times> {
  const times: Times = new Map(list.map((c) => [c.key, []]));
  for (let i = 0; i < runs + 3; i++) {
    for (const c of list) {
      const t0 = process.hrtime.bigint();
      spawnSync('sh', ['-c', c.line], { stdio: 'ignore' });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (i >= 3) times.get(c.key)!.push(ms);
    }
    await sleep(10);
  }
  return times;
}

export async function runStartup(runs: number, opts: { rounds?: number; base?: string } = {}): Promise<StartupResult> {
  const rounds = opts.rounds ?? 1;
  const base = opts.base ? buildBase(opts.base) : null;
  const notes: string[] = [];
  const hyperfine = which('hyperfine') !== null;
  notes.push(
    hyperfine
      ? 'hyperfine subtracts its measured shell start-up from every command'
      : 'hyperfine not installed: own loop, every command through sh -c (shell start-up included in each)',
  );
  if (rounds > 1) notes.push(`${rounds} rounds, the command order reversed every other round`);
  try {
    const list = commands(process.execPath, base?.bin ?? null);
    const all: Times = new Map(list.map((c) => [c.key, []]));
    const perRound: StartupRound[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? list : [...list].reverse();
      const times = hyperfine ? hyperfineRound(order, runs) : await ownLoopRound(order, runs);
      for (const [k, v] of times) all.get(k)!.push(...v);
      const ratio = (k: Command['key']) => median(times.get(k)!) / median(times.get('node')!);
      perRound.push({
        prompt: ratio('prompt'),
        version: ratio('version'),
        ...(base ? { basePrompt: ratio('basePrompt'), baseVersion: ratio('baseVersion') } : {}),
      });
    }
    const of = (k: Command['key']) => all.get(k)!;
    const ratio = (k: Command['key']) => median(of(k)) / median(of('node'));
    return {
      tool: hyperfine ? 'hyperfine' : 'loop',
      runs,
      dropwatch: spread(of('prompt')),
      node: spread(of('node')),
      floor: spread(of('floor')),
      ratio: ratio('prompt'),
      version: spread(of('version')),
      versionRatio: ratio('version'),
      ...(base
        ? {
            base: {
              rev: base.rev,
              commit: base.commit,
              dropwatch: spread(of('basePrompt')),
              version: spread(of('baseVersion')),
              ratio: ratio('basePrompt'),
              versionRatio: ratio('baseVersion'),
            },
          }
        : {}),
      rounds: perRound,
      notes,
    };
  } finally {
    if (base) removeBase(base);
  }
}
