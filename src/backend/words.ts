// What a backend cannot do, in words: each sentence comes from a capability and names the sources that have it.
import {
  provides,
  type AlertMode,
  type BackendCapabilities,
  type BackendName,
  type DropField,
  type SourceInfo,
  type SourceOffer,
} from './types.js';

/** The opened backend a sentence is about, and the source table that says who else could do it. */
export interface WordsContext {
  readonly name: BackendName;
  readonly capabilities: BackendCapabilities;
  readonly sources: readonly SourceInfo[];
}

/** "a", "a or b", "a, b or c". */
export function either(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)!}`;
}

const providers = (sources: readonly SourceInfo[], has: (offer: SourceOffer) => boolean): SourceInfo[] =>
  sources.filter((s) => has(s.offers));

const labels = (sources: readonly SourceInfo[], has: (offer: SourceOffer) => boolean): string =>
  either(providers(sources, has).map((s) => s.label)) || 'another source';

const hasHardware = (o: SourceOffer): boolean => o.settings.hw;
const hasPayloads = (o: SourceOffer): boolean => o.settings.trunc;
const hasQueue = (o: SourceOffer): boolean => o.settings.queue;
const hasStacks = (o: SourceOffer): boolean => o.fields.summary.includes('stack');
const hasPlaces = (o: SourceOffer): boolean => o.fields.summary.includes('device');
const decodesPackets = (o: SourceOffer): boolean => o.modes.includes('packet') && o.fields.packet.includes('flow');

/** The sentences front ends print when a backend lacks what a command or option asks for. */
export class CapabilityWords {
  constructor(private readonly ctx: WordsContext) {}

  /** `set hw true` on a source without hardware drops, or on one that has them where the kernel has devlink. */
  noHardware(): string {
    if (this.kernelLacksDevlink()) return noDevlink(this.ctx.name);
    return (
      `hardware drops are reported only by ${labels(this.ctx.sources, hasHardware)} (devlink traps); ` +
      `the ${this.ctx.name} backend sees software drops only`
    );
  }

  /** This source can report hardware drops, but not on this kernel (the opened backend found no devlink). */
  private kernelLacksDevlink(): boolean {
    const own = this.ctx.sources.find((s) => s.name === this.ctx.name);
    return own !== undefined && own.offers.settings.hw && !this.ctx.capabilities.settings.hw;
  }

  /** `set trunc` on a source without payloads. */
  noTruncation(): string {
    return `truncation applies to ${labels(this.ctx.sources, hasPayloads)} packet payloads; the ${this.ctx.name} backend captures no payload`;
  }

  /** `set queue` on a source without a packet queue. */
  noQueue(): string {
    return `the queue length is ${labels(this.ctx.sources, hasQueue)}'s per-CPU packet queue; the ${this.ctx.name} backend has none`;
  }

  /** `set stack` or `--stack` on a source without call chains. */
  noStacks(): string {
    const others = providers(this.ctx.sources, hasStacks).filter((s) => s.name !== this.ctx.name);
    const remedy = others.map((s) => `the ${s.name} backend does (-b ${s.name})`).join('; ');
    return `the ${this.ctx.name} backend reports no call chains${remedy ? `; ${remedy}` : ''}`;
  }

  /** Grouping drops by workload (namespace, device) on a source whose counts say neither. */
  noPlaceCounts(): string {
    const others = providers(this.ctx.sources, hasPlaces).filter((s) => s.name !== this.ctx.name);
    const remedy = others.map((s) => `the ${s.name} backend does (-b ${s.name})`).join('; ');
    return `the ${this.ctx.name} backend reports no network namespaces or devices${remedy ? `; ${remedy}` : ''}`;
  }

  /** Workload labels (`--metrics-labels`) in a mode where this source does not say where drops happen. */
  noPlaces(mode: AlertMode): string {
    const where = (o: SourceOffer, m: AlertMode): boolean => o.fields[m].includes('device');
    const others = this.ctx.sources
      .filter((s) => s.name !== this.ctx.name || where(s.offers, otherMode(mode)))
      .flatMap((s) => {
        if (where(s.offers, 'summary') && where(s.offers, 'packet'))
          return [`the ${s.name} backend does (-b ${s.name})`];
        const m = (['summary', 'packet'] as const).find((m) => where(s.offers, m) && s.offers.modes.includes(m));
        return m ? [`the ${s.name} backend does in ${m} mode (-b ${s.name} -m ${m})`] : [];
      });
    const said = `the ${this.ctx.name} backend does not say where drops happen (network namespace, device) in ${mode} mode`;
    return [said, ...others].join('; ');
  }

  /** An alert mode the source cannot deliver. */
  noMode(mode: AlertMode): string {
    return `${mode} mode is not available on the ${this.ctx.name} backend`;
  }

  /** How to get a decoded packet, for a filter on the flow where this source decodes none. */
  decodePackets(): string {
    const them = providers(this.ctx.sources, decodesPackets);
    if (them.length === 0) return 'no source here decodes packets';
    const how = either(them.map((s) => `-b ${s.name} -m packet`));
    return `${either(them.map((s) => `${s.label}'s`))} packet mode decodes packets: ${how}`;
  }

  /**
   * How to get `needs` from another source: "use -b bpf", "use -b tracefs -m packet or -b bpf -m packet"; in `mode`
   * only when given (a --by key is for summary lines). "no source here reports it" when none does.
   */
  howToGet(needs: readonly DropField[], mode?: AlertMode): string {
    const ways = this.ctx.sources.flatMap((s) => {
      if (s.name === this.ctx.name) return [];
      const has = (m: AlertMode) => s.offers.modes.includes(m) && needs.every((n) => s.offers.fields[m].includes(n));
      if (mode !== undefined) return has(mode) ? [`-b ${s.name}`] : [];
      if (has('summary')) return [`-b ${s.name}`];
      return has('packet') ? [`-b ${s.name} -m packet`] : [];
    });
    return ways.length > 0 ? `use ${either(ways)}` : 'no source here reports it';
  }

  /** Keys summary lines cannot be grouped by here ("netns is not known on the tracefs backend in summary mode (use -b bpf)"). */
  notInSummary(keys: readonly (readonly [string, DropField])[]): string {
    return this.notInMode(keys, 'summary');
  }

  /**
   * Keys lines cannot be grouped by in `mode` here; where this source's other mode knows them (NET_DM's input port in
   * packet mode) that comes first: "dev is not known on the netdm backend in summary mode (use -m packet, or -b bpf)".
   */
  notInMode(keys: readonly (readonly [string, DropField])[], mode: AlertMode): string {
    const verb = keys.length === 1 ? 'is' : 'are';
    const what = either(keys.map(([k]) => k)).replace(/ or (?=[^ ]+$)/, ' and ');
    const needs = [...new Set(keys.map(([, f]) => f))];
    const other = otherMode(mode);
    const here =
      this.ctx.capabilities.modes.includes(other) && needs.every((n) => provides(this.ctx.capabilities, other, n));
    const elsewhere = this.howToGet(needs, mode);
    const how = !here
      ? elsewhere
      : elsewhere.startsWith('use ')
        ? `use -m ${other}, or ${elsewhere.slice(4)}`
        : `use -m ${other}`;
    return `${what} ${verb} not known on the ${this.ctx.name} backend in ${mode} mode (${how})`;
  }

  /** Lines for `help`: what this backend lacks, and what it adds. */
  helpNotes(): string[] {
    const { name, capabilities, sources } = this.ctx;
    const notes = [`Backend: ${name}. When neither sw nor hw is set, software drops are monitored.`];
    if (this.kernelLacksDevlink())
      notes.push('This kernel has no devlink (devlink:devlink_trap_report): this backend sees software drops only.');
    else if (!capabilities.settings.hw)
      notes.push(`This backend sees software drops only: set hw needs ${labels(sources, hasHardware)}.`);
    if (!capabilities.settings.trunc)
      notes.push(
        `This backend captures no packet payload: set trunc and set queue need ${labels(sources, hasPayloads)}.`,
      );
    else if (!capabilities.settings.queue)
      notes.push(`This backend has no per-CPU packet queue: set queue needs ${labels(sources, hasQueue)}.`);
    return notes;
  }

  /** "the workload fields (…) need bpf": where a drop's namespace is known, for the filter note in `help`. */
  workloadNeeds(): string {
    const them = providers(this.ctx.sources, (o) => o.modes.some((m) => o.fields[m].includes('netns')));
    return them.length === 0 ? 'are not known on any source' : `need ${either(them.map((s) => s.label))}`;
  }

  /** "the flow fields (…) need NET_DM's packet mode": where the flow is known, for the filter note in `help`. */
  flowNeeds(): string {
    const them = providers(this.ctx.sources, decodesPackets);
    return them.length === 0
      ? 'are not known on any source'
      : `need ${either(them.map((s) => `${s.label}'s`))} packet mode`;
  }
}

const otherMode = (mode: AlertMode): AlertMode => (mode === 'summary' ? 'packet' : 'summary');

/** Hardware drops asked of a source that reports them where the kernel has devlink, on a kernel that has none. */
export function noDevlink(name: BackendName): string {
  return `this kernel has no devlink (no devlink:devlink_trap_report tracepoint), so the ${name} backend sees no hardware drops`;
}

/** `show`'s line in place of the packet-queue settings a source does not have. */
export function noPacketQueue(sources: readonly SourceInfo[]): string {
  return `Truncation length and queue length: not applicable (no ${labels(sources, hasQueue)} packet queue on this backend)`;
}
