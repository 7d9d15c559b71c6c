// The source table: every drop source in `auto`'s order, the one place that lists them; `auto` opens the first the
// machine allows.
import type { Backend, BackendName, DropSource, OpenOptions, SourceInfo } from '../backend/types.js';
import { DropwatchError } from '../errors/index.js';
import { BPF_SOURCE } from '../bpf/source.js';
import { NETDM_SOURCE } from '../netdm/source.js';
import { TRACEFS_SOURCE } from '../tracefs/source.js';

export type { OpenOptions };

/**
 * NET_DM first: it is what dropwatch speaks and the only one with hardware drops. tracefs before bpf while only
 * tracefs filters in the kernel and samples call chains: a protocol filter in bpf's summary mode would match nothing.
 */
const SOURCES: DropSource[] = [NETDM_SOURCE, TRACEFS_SOURCE, BPF_SOURCE];

/** Adds a source at the end of `auto`'s order (a test's in-memory source); a name already listed is refused. */
export function registerSource(source: DropSource): void {
  if (SOURCES.some((s) => s.name === source.name) || source.name === 'auto')
    throw new DropwatchError('E_USAGE', `a source named ${source.name} is already listed`);
  SOURCES.push(source);
}

/** Every source, in `auto`'s order, as the front ends describe them. */
export function sources(): readonly SourceInfo[] {
  return SOURCES;
}

/** The names `-b` takes: `auto` and every source's. */
export function sourceChoices(): string[] {
  return ['auto', ...SOURCES.map((s) => s.name)];
}

const hasStacks = (s: DropSource): boolean => s.offers.fields.summary.includes('stack');

export async function openBackend(kind: BackendName, options: OpenOptions): Promise<Backend> {
  if (kind !== 'auto') return sourceNamed(kind).open(options);
  // Every source but the last gives way to the next when the machine lacks it; the last one's error is the answer.
  for (const [i, source] of SOURCES.slice(0, -1).entries()) {
    if (options.stack && !hasStacks(source) && SOURCES.slice(i + 1).some(hasStacks)) continue;
    try {
      return await source.open(options);
    } catch (err) {
      if (!(err instanceof DropwatchError) || err.code !== source.missing) throw err;
      options.notice(`this kernel has no ${source.needs}; using ${SOURCES[i + 1]!.needs}`);
    }
  }
  return SOURCES.at(-1)!.open(options);
}

function sourceNamed(name: BackendName): DropSource {
  const source = SOURCES.find((s) => s.name === name);
  if (!source) throw new DropwatchError('E_USAGE', `unknown backend ${name}`);
  return source;
}
