// The source table: every drop source in `auto`'s order, the one place that lists them; `auto` opens the first the
// machine allows.
import type { Backend, BackendName, DropSource, OpenOptions, SourceInfo } from '../backend/types.js';
import { DropwatchError } from '../errors/index.js';
import { BPF_SOURCE } from '../bpf/source.js';
import { NETDM_SOURCE } from '../netdm/source.js';
import { TRACEFS_SOURCE } from '../tracefs/source.js';

export type { OpenOptions };

/**
 * NET_DM first: it is byte-compatible with Debian's dropwatch and the only one with hardware drops. bpf before
 * tracefs: it filters in the kernel too, and adds namespaces, devices, tasks, packets and flows. When call chains are
 * asked for, a source without them gives way to a later one with them.
 */
const SOURCES: DropSource[] = [NETDM_SOURCE, BPF_SOURCE, TRACEFS_SOURCE];

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

/** `dropwatch: using bpf (NET_DM: this kernel has no drop_monitor (NET_DM))`: what auto took and what it passed over. */
export function autoNotice(taken: SourceInfo, passed: readonly { source: SourceInfo; why: string }[]): string {
  const over = passed.map(({ source, why }) => `${source.label}: ${why}`).join('; ');
  return `dropwatch: using ${taken.label}${over === '' ? '' : ` (${over})`}`;
}

/** Why auto passed `source` over: the error's own short cause, else that the kernel lacks what the source needs. */
export const passedOver = (source: SourceInfo, err: DropwatchError): string =>
  err.why ?? `this kernel has no ${source.needs}`;

export async function openBackend(kind: BackendName, options: OpenOptions): Promise<Backend> {
  if (kind !== 'auto') return sourceNamed(kind).open(options);
  const passed: { source: SourceInfo; why: string }[] = [];
  const opened = (source: DropSource, backend: Backend): Backend => {
    if (passed.length > 0) options.notice(autoNotice(source, passed));
    return backend;
  };
  // Every source but the last gives way to the next when the machine lacks it; the last one's error is the answer.
  for (const [i, source] of SOURCES.slice(0, -1).entries()) {
    if (options.stack && !hasStacks(source) && SOURCES.slice(i + 1).some(hasStacks)) {
      passed.push({ source, why: 'no call chains' });
      continue;
    }
    try {
      return opened(source, await source.open(options));
    } catch (err) {
      if (!(err instanceof DropwatchError) || err.code !== source.missing) throw err;
      passed.push({ source, why: passedOver(source, err) });
    }
  }
  const last = SOURCES.at(-1)!;
  return opened(last, await last.open(options));
}

function sourceNamed(name: BackendName): DropSource {
  const source = SOURCES.find((s) => s.name === name);
  if (!source) throw new DropwatchError('E_USAGE', `unknown backend ${name}`);
  return source;
}
