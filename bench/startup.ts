// Benchmark 2: time from exec to exit for `echo exit | dropwatch -l kas` (the prompt) and `dropwatch --version`,
// against a bare `node -e 0`, the commands alternating run by run: on a shared machine the load drifts within seconds,
// and hyperfine (one command's runs, then the next's) put that drift into the ratios. With a base build the before
// and after run side by side in the same rounds.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildBase, removeBase } from './lib/base-build.js';
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
  argv: string[];
  /** Written to its standard input, a pipe; then closed. */
  stdin: string;
}

function commands(node: string, base: string | null): Command[] {
  const floorScript = fileURLToPath(new URL('./startup-floor.js', import.meta.url));
  const list: Command[] = [
    { key: 'prompt', argv: [node, dropwatchBin, '-l', 'kas'], stdin: 'exit\n' },
    { key: 'version', argv: [node, dropwatchBin, '--version'], stdin: '' },
  ];
  if (base !== null)
    list.push(
      { key: 'basePrompt', argv: [node, base, '-l', 'kas'], stdin: 'exit\n' },
      { key: 'baseVersion', argv: [node, base, '--version'], stdin: '' },
    );
  list.push(
    { key: 'floor', argv: [node, floorScript, '-l', 'kas'], stdin: 'exit\n' },
    { key: 'node', argv: [node, '-e', '0'], stdin: '' },
  );
  return list;
}

type Times = Map<Command['key'], number[]>;

/**
 * One round: the commands alternate run by run, each spawned directly (no shell) with its input on a pipe, so a
 * change in the machine's load falls on all of them alike; 3 warm-up turns first. Milliseconds per command.
 */
async function interleavedRound(list: Command[], runs: number): Promise<Times> {
  const times: Times = new Map(list.map((c) => [c.key, []]));
  for (let i = 0; i < runs + 3; i++) {
    for (const c of list) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(c.argv[0]!, c.argv.slice(1), { input: c.stdin, stdio: ['pipe', 'ignore', 'ignore'] });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`${c.argv.join(' ')} exited ${r.status ?? r.signal}`);
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
  notes.push('The commands alternate run by run, spawned without a shell, input on a pipe');
  if (rounds > 1) notes.push(`${rounds} rounds, the command order reversed every other round`);
  try {
    const list = commands(process.execPath, base?.bin ?? null);
    const all: Times = new Map(list.map((c) => [c.key, []]));
    const perRound: StartupRound[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? list : [...list].reverse();
      const times = await interleavedRound(order, runs);
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
      tool: 'an interleaved loop',
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
