// The opt-in workload labels of dropwatch_drops_total as values: which ones (--metrics-labels), what a drop's place and
// its workload make of them, and the fold that keeps their series at most --metrics-max-series. No prom-client here.
import type { SummaryEntry } from '../backend/types.js';
import { DropwatchError } from '../errors/index.js';
import type { WorkloadNames } from '../workload/types.js';

/** What --metrics-labels takes, in the order the labels are exported. */
export const METRICS_LABEL_KEYS = ['netns', 'container', 'pod', 'dev'] as const;
export type MetricsLabelKey = (typeof METRICS_LABEL_KEYS)[number];

/** Each key's label name: the ones users already chart (node_exporter's `device`). */
const LABEL_NAME: Readonly<Record<MetricsLabelKey, string>> = {
  netns: 'netns',
  container: 'container',
  pod: 'pod',
  dev: 'device',
};

export const DEFAULT_MAX_SERIES = 500;
/** The value of every added label of the series that sums the label sets past the limit. */
export const OTHER = 'other';
/** A container's short ID, as `docker ps` and `podman ps` show it. */
const SHORT_ID = 12;

/** `netns,dev` → the keys, in export order, each once; an unknown or empty name is one line (E_USAGE). */
export function parseMetricsLabels(text: string): MetricsLabelKey[] {
  const asked = text.split(',').map((name) => name.trim());
  for (const name of asked)
    if (!(METRICS_LABEL_KEYS as readonly string[]).includes(name))
      throw new DropwatchError(
        'E_USAGE',
        `unknown metrics label ${/^[\w.-]+$/.test(name) ? name : JSON.stringify(name)} (use netns, container, pod or dev)`,
      );
  return METRICS_LABEL_KEYS.filter((key) => asked.includes(key));
}

export const labelNames = (keys: readonly MetricsLabelKey[]): string[] => keys.map((key) => LABEL_NAME[key]);

/** Where some drops happened, as far as the source said. */
export interface Where {
  netns: number | null;
  ifname: string | null;
}

/**
 * The label values of `keys` for drops at `where`: unknown is the empty string, a namespace not named (yet) its inode.
 * The workload is asked only when a workload label is wanted and the namespace is known.
 */
export function labelValues(keys: readonly MetricsLabelKey[], where: Where, names: WorkloadNames): string[] {
  const wantsWorkload = keys.some((key) => key !== 'dev');
  const workload = wantsWorkload && where.netns !== null ? names.lookup(where.netns) : null;
  return keys.map((key) => {
    switch (key) {
      case 'dev':
        return where.ifname ?? '';
      case 'netns':
        return workload ? (workload.netnsName ?? String(workload.netns)) : '';
      case 'container':
        return workload?.containerName ?? workload?.container?.slice(0, SHORT_ID) ?? '';
      case 'pod':
        return workload?.pod ?? '';
    }
  });
}

/** A summary entry's drops by place; what its places leave of its count is one more place nobody knows. */
export function placesOf(entry: SummaryEntry): (Where & { count: number })[] {
  const out = (entry.places ?? []).map((p) => ({ netns: p.netns, ifname: p.ifname, count: p.count }));
  const left = entry.count - out.reduce((n, p) => n + p.count, 0);
  if (left > 0) out.push({ netns: null, ifname: null, count: left });
  return out;
}

/** How many folded label sets are remembered, so the gauge counts each once: beyond it the gauge is a lower bound. */
export const REMEMBER_FOLDED = 65536;

/**
 * The cardinality guard: the first `max` label sets (base labels and added ones together) keep their added labels;
 * later ones get `other` in every added label, so their drops sum into one series per base label set.
 */
export class SeriesFold {
  private readonly kept = new Set<string>();
  private readonly foldedSets = new Set<string>();
  private readonly others = new Map<number, string[]>();

  constructor(
    private readonly max: number,
    private readonly remember = REMEMBER_FOLDED,
  ) {}

  /** The added label values to count under: `added` itself, or all `other`. */
  admit(base: readonly string[], added: readonly string[]): readonly string[] {
    // NUL cannot occur in a symbol, a reason, a device or a container name.
    const key = `${base.join('\0')}\0\0${added.join('\0')}`;
    if (this.kept.has(key)) return added;
    if (this.kept.size < this.max) {
      this.kept.add(key);
      return added;
    }
    if (this.foldedSets.size < this.remember) this.foldedSets.add(key);
    return this.other(added.length);
  }

  private other(n: number): string[] {
    let values = this.others.get(n);
    if (!values) this.others.set(n, (values = new Array<string>(n).fill(OTHER)));
    return values;
  }

  /** Label sets that kept their labels. */
  get admitted(): number {
    return this.kept.size;
  }

  /** Distinct label sets folded into `other` (counted up to what is remembered). */
  get folded(): number {
    return this.foldedSets.size;
  }
}
