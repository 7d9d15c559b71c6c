// Connects the filter language to a backend: its kernel filter, when it has one, evaluates what it can; the rest runs
// per drop here.
import type { AlertMode, Backend, BackendCapabilities, DropField, SourceInfo } from '../backend/types.js';
import { CapabilityWords } from '../backend/words.js';
import {
  compile,
  conjoin,
  constantWithout,
  fieldsOf,
  FLOW_FIELDS,
  format,
  KERNEL_FILTER_MAX,
  NAMED_FIELDS,
  parse,
  pushdown,
  pushdownSets,
  recordFromPacket,
  recordFromSummary,
  selectPlaces,
  type Expr,
  type NamesOf,
  type Field,
} from '../filter/index.js';
import { DropwatchError, oneLine, shorten } from '../errors/index.js';
import { withTaskCgroup } from '../workload/task.js';
import type { DropPredicate, FilterCompiler, SymbolNames, WorkloadSource } from './types.js';

export interface FilterControl {
  compiler: FilterCompiler;
  predicate: () => DropPredicate | null;
  /**
   * Applies a parsed expression (from --filter / --ignore-reason) for `mode` (the backend's current one when null);
   * returns the line to show.
   */
  applyExpr(expr: Expr | null, mode?: AlertMode | null): Promise<string>;
  /** The filter in force and where each part runs, as `filter set:` says it; null when none. */
  describe(): string | null;
}

// Code points of each part of the `filter set:` echo; a filter can be 64 KiB, which would flood a terminal or a log.
const ECHO_MAX = 160;

/** A filter as the echo shows it: shortened, and every control or bidi character escaped. */
const echo = (text: string): string => oneLine(shorten(text, ECHO_MAX));

/** The filter fields a backend reports only when its capabilities say so, and the capability each needs. */
const REPORTED_AS: readonly [Field, DropField][] = [
  ['reason', 'reason'],
  ['protocol', 'protocol'],
  ['ifindex', 'device'],
  ['ifname', 'device'],
  ['netns', 'netns'],
  ...FLOW_FIELDS.map((f): [Field, DropField] => [f, 'flow']),
];

const other = (mode: AlertMode): AlertMode => (mode === 'summary' ? 'packet' : 'summary');

/** "a", "a and b", "a, b and c". */
function list(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)!}`;
}

/**
 * The fields refused where the mode cannot know them, and what each needs: the flow, and where the drop happened (its
 * namespace, the names that come from it, its task).
 */
const REFUSED_AS: readonly [Field, DropField][] = [
  ...FLOW_FIELDS.map((f): [Field, DropField] => [f, 'flow']),
  ['netns', 'netns'],
  ['container', 'netns'],
  ['pod', 'netns'],
  ['comm', 'process'],
];

/** Fields a filter reads that the backend does not report in `mode`, what they need, and the mode that has it. */
export interface UnknownFlow {
  fields: Field[];
  needs: DropField[];
  mode: AlertMode;
  knownIn: AlertMode | null;
}

/**
 * Why a filter cannot be evaluated in `mode`, or null when it can.
 *
 * Flow and workload fields are refused rather than warned about as the older fields are: a filter on the flow or a
 * container means "show me this flow, this container", and quietly matching nothing (or everything) would hide
 * exactly what it asks for. The older fields keep their warning because common runs rely on it, such as
 * --ignore-reason on NET_DM's summary mode (no reasons there).
 */
export function unknownFlow(expr: Expr, capabilities: BackendCapabilities, mode: AlertMode): UnknownFlow | null {
  const { fields } = capabilities;
  const used = fieldsOf(expr);
  const missing = REFUSED_AS.filter(([f, need]) => used.has(f) && !fields[mode].includes(need));
  if (missing.length === 0) return null;
  const needs = [...new Set(missing.map(([, need]) => need))];
  const elsewhere = other(mode);
  const knownIn =
    capabilities.modes.includes(elsewhere) && needs.every((n) => fields[elsewhere].includes(n)) ? elsewhere : null;
  return { fields: missing.map(([f]) => f), needs, mode, knownIn };
}

/** "dport is known only in packet mode, not in summary mode", or why this backend never knows it. */
function unknownFlowText(u: UnknownFlow, backend: Backend): string {
  const verb = u.fields.length === 1 ? 'is' : 'are';
  if (u.knownIn !== null) return `${list(u.fields)} ${verb} known only in ${u.knownIn} mode, not in ${u.mode} mode`;
  const flowOnly = u.needs.every((n) => n === 'flow');
  return `${list(u.fields)} ${verb} not known on the ${backend.name} backend${flowOnly ? ', which decodes no packets' : ''}`;
}

/** How to get what `u` needs from another source, for a field this backend never reports. */
function elsewhereRemedy(u: UnknownFlow, backend: Backend, sources: readonly SourceInfo[]): string {
  const words = new CapabilityWords({ name: backend.name, capabilities: backend.capabilities, sources });
  return u.needs.every((n) => n === 'flow') ? words.decodePackets() : words.howToGet(u.needs);
}

/** The backend's alert mode now; null when it cannot be asked (the start that follows says why). */
async function currentMode(backend: Backend): Promise<AlertMode | null> {
  try {
    return (await backend.getConfig()).alertMode;
  } catch {
    return null;
  }
}

/** Why `expr` cannot be evaluated in `mode` (the current mode when null), or null; asks the backend only if needed. */
async function unknownIn(backend: Backend, expr: Expr | null, mode: AlertMode | null): Promise<UnknownFlow | null> {
  if (expr === null || !REFUSED_AS.some(([f]) => fieldsOf(expr).has(f))) return null;
  const m = mode ?? (await currentMode(backend));
  return m === null ? null : unknownFlow(expr, backend.capabilities, m);
}

/**
 * Refuses, before anything reaches the kernel, a --filter that reads a flow or workload field this run cannot know:
 * in `mode` (the one -m asks for), or in the backend's current mode when null. Throws E_UNSUPPORTED, one line; the
 * remedy names the sources that know it.
 */
export async function requireKnownFields(
  backend: Backend,
  expr: Expr | null,
  mode: AlertMode | null,
  sources: readonly SourceInfo[],
): Promise<void> {
  const u = await unknownIn(backend, expr, mode);
  if (u === null) return;
  const remedy = u.knownIn ? `add -m ${u.knownIn}` : elsewhereRemedy(u, backend, sources);
  throw new DropwatchError('E_UNSUPPORTED', `--filter: ${unknownFlowText(u, backend)} (${remedy})`);
}

/** The fields a kernel filter tests that a mode may not report to dropwatch, and the capability that reports each. */
const KERNEL_FIELDS: readonly [Field, DropField][] = [
  ['reason', 'reason'],
  ['protocol', 'protocol'],
  ['ifindex', 'device'],
  ['netns', 'netns'],
];

/** Fields a summary entry's filter record never holds: each place is tested with its device and namespace. */
const NOT_IN_SUMMARY_RECORDS: readonly Field[] = ['protocol'];

/** Whether dropwatch can test `field` itself on the drops of `mode`. */
const testable = (capabilities: BackendCapabilities, mode: AlertMode, [field, needs]: [Field, DropField]): boolean =>
  capabilities.fields[mode].includes(needs) && !(mode === 'summary' && NOT_IN_SUMMARY_RECORDS.includes(field));

/** A filter split for the backend's kernel filter, whichever its syntax, and what that kernel takes at most. */
interface Split {
  /** The kernel's part as `filter set:` shows it, or null when the kernel decides nothing. */
  kernelText: string | null;
  userExpr: Expr | null;
  /** Parts the kernel could decide that did not fit it (also in userExpr), or null. */
  tooLong: Expr | null;
  /** The kernel filter's size with every part it could decide, in `unit`. */
  kernelLength: number;
  /** Installs the kernel's part (none when it has none). */
  install(): Promise<void>;
}

interface KernelSplit {
  split: Split;
  max: number;
  unit: 'characters' | 'values';
}

/** Parts the kernel would test but that did not fit its filter, reading fields `mode` does not report. */
interface TooLong {
  fields: Field[];
  mode: AlertMode;
  knownIn: AlertMode | null;
  length: number;
  max: number;
  unit: 'characters' | 'values';
}

/** `expr` split for the backend's kernel filter, or null when the backend has none. */
function splitFor(backend: Backend, expr: Expr): KernelSplit | null {
  const { kernelFilter: kf } = backend.capabilities;
  if (kf === null) return null;
  if (kf.syntax === 'ftrace-event') {
    const max = kf.maxLength ?? KERNEL_FILTER_MAX;
    const p = pushdown(expr, kf.reasons, max);
    const split = { ...p, kernelText: p.kernel, install: () => kf.apply(p.kernel) };
    return { split, max, unit: 'characters' };
  }
  const p = pushdownSets(expr, kf.reasons, kf.maxValues, kf.hardware);
  const kernelText = p.kernelExpr === null ? null : format(p.kernelExpr);
  return { split: { ...p, kernelText, install: () => kf.apply(p.kernel) }, max: kf.maxValues, unit: 'values' };
}

/** Why what did not fit the kernel's filter cannot be tested by dropwatch in `mode` instead, or null when it can. */
function tooLongIn(
  capabilities: BackendCapabilities,
  { split, max, unit }: KernelSplit,
  mode: AlertMode,
): TooLong | null {
  if (split.tooLong === null) return null;
  const used = fieldsOf(split.tooLong);
  const missing = KERNEL_FIELDS.filter((f) => used.has(f[0]) && !testable(capabilities, mode, f));
  if (missing.length === 0) return null;
  const elsewhere = other(mode);
  const knownIn =
    capabilities.modes.includes(elsewhere) && missing.every((f) => testable(capabilities, elsewhere, f))
      ? elsewhere
      : null;
  return { fields: missing.map(([f]) => f), mode, knownIn, length: split.kernelLength, max, unit };
}

/** "too long for the kernel's filter (…), and protocol is not reported … so dropwatch cannot test it instead". */
function tooLongText(t: TooLong, backend: Backend): string {
  const verb = t.fields.length === 1 ? 'is' : 'are';
  return (
    `too long for the kernel's filter (${t.length} ${t.unit}, at most ${t.max}), and ${list(t.fields)} ${verb} ` +
    `not reported by the ${backend.name} backend in ${t.mode} mode, so dropwatch cannot test it instead`
  );
}

/**
 * Refuses, before anything reaches the kernel, a --filter too long for the kernel's filter whose overflow reads a
 * field only the kernel can test in `mode` (the backend's current one when null). Throws E_UNSUPPORTED, one line.
 */
export async function requireKernelFit(backend: Backend, expr: Expr | null, mode: AlertMode | null): Promise<void> {
  const split = expr === null ? null : splitFor(backend, expr);
  if (split === null || split.split.tooLong === null) return;
  const m = mode ?? (await currentMode(backend));
  const t = m === null ? null : tooLongIn(backend.capabilities, split, m);
  if (t === null) return;
  const remedy = t.knownIn ? `shorten it, or add -m ${t.knownIn}` : 'shorten it';
  throw new DropwatchError('E_UNSUPPORTED', `--filter: ${tooLongText(t, backend)} (${remedy})`);
}

/** The run's filter: --filter and --ignore-reason as the base, `set filter` added to it, split between kernel and us. */
class RunFilter implements FilterControl {
  /** The part set at the prompt (`set filter`), conjoined to `base` (--filter, --ignore-reason). */
  private prompt: Expr | null = null;
  private test: DropPredicate | null = null;
  private description: string | null = null;
  /** The part of the filter dropwatch evaluates, null when none. */
  private userExpr: Expr | null = null;
  /** How the filter in force was split for the kernel, null when it was not. */
  private kernelSplit: KernelSplit | null = null;
  readonly compiler: FilterCompiler;

  constructor(
    private readonly backend: Backend,
    private readonly symbols: SymbolNames,
    private readonly base: Expr | null,
    private readonly workloads: WorkloadSource | null,
    private readonly sources: readonly SourceInfo[],
  ) {
    this.compiler = {
      apply: (text) => this.apply(text),
      check: () => this.check(),
      refuseMode: async (mode) => {
        const why = await this.inForce(mode, () => 'set filter none first');
        return why === null ? null : `alert mode not set: ${why}`;
      },
      refuseStart: async () => {
        const why = await this.inForce(null, (u) =>
          u.knownIn ? `set alertmode ${u.knownIn}, or set filter none` : 'set filter none',
        );
        return why === null ? null : `monitoring not started: ${why}`;
      },
    };
  }

  readonly predicate = (): DropPredicate | null => this.test;

  describe(): string | null {
    return this.description;
  }

  async applyExpr(expr: Expr | null, mode: AlertMode | null = null): Promise<string> {
    const { kernelFilter } = this.backend.capabilities;
    const whole = conjoin(this.base, expr);
    if (whole === null) {
      await kernelFilter?.apply(null);
      this.prompt = this.test = this.description = this.userExpr = this.kernelSplit = null;
      return 'filter cleared';
    }
    // Names come from a resolver made only for a filter (or a run) that reads them.
    if (NAMED_FIELDS.some((f) => fieldsOf(whole).has(f))) await this.workloads?.need();
    const split = splitFor(this.backend, whole);
    const kernel = split?.split.kernelText ?? null;
    const rest = split ? split.split.userExpr : whole;
    if (split !== null && kernelFilter !== null) {
      const tooLong = await this.tooLong(split, mode);
      if (tooLong !== null) {
        const remedy = tooLong.knownIn ? `shorten it, or set alertmode ${tooLong.knownIn} first` : 'shorten it';
        throw new DropwatchError('E_UNSUPPORTED', `filter not set: ${tooLongText(tooLong, this.backend)} (${remedy})`);
      }
      await split.split.install();
    }
    // Only now: a kernel that refused the filter left the previous one in force.
    this.prompt = expr;
    this.kernelSplit = split;
    this.userExpr = rest;
    this.test = rest === null ? null : this.compileRest(rest);
    const where = [kernel ? `kernel: ${echo(kernel)}` : null, rest ? `dropwatch: ${echo(format(rest))}` : null];
    this.description = `${echo(format(whole))} (${where.filter(Boolean).join('; ')})`;
    return `filter set: ${this.description}`;
  }

  private compileRest(rest: Expr): DropPredicate {
    const test = compile(rest);
    const name = (pc: bigint | undefined) => (pc === undefined ? null : (this.symbols.lookup(pc)?.symbol ?? null));
    const names = NAMED_FIELDS.some((f) => fieldsOf(rest).has(f)) ? this.namesOf : null;
    return {
      // Each place (namespace, device, task) on its own: only the matching ones pass, with their counts.
      summary: (e) => {
        const symbol = name(e.pc);
        return selectPlaces(e, (place) => test(recordFromSummary(e, symbol, place, names)));
      },
      packet: (p) => test(recordFromPacket(p, p.symbol ? undefined : name(p.pc), names)),
    };
  }

  /**
   * A namespace's names as far as they are known now, or its task's cgroup's where the namespace names no container;
   * nothing before the resolver is made.
   */
  private readonly namesOf: NamesOf = (netns, cgroup) => {
    const names = this.workloads?.current();
    const none = { container: null, containerName: null, pod: null, podUid: null };
    const w = names ? names.lookup(netns) : none;
    return withTaskCgroup(w, cgroup === null || cgroup === undefined || !names?.cgroup ? null : names.cgroup(cgroup));
  };

  /** Refuses to set a filter the current mode cannot evaluate; the filter in force stays. */
  private async apply(text: string | null): Promise<string> {
    const expr = text === null ? null : parse(text);
    const u = await unknownIn(this.backend, expr, null);
    if (u !== null) {
      const flowOnly = u.needs.every((n) => n === 'flow');
      const remedy = u.knownIn
        ? ` (set alertmode ${u.knownIn} first)`
        : flowOnly
          ? ''
          : ` (${elsewhereRemedy(u, this.backend, this.sources)})`;
      throw new DropwatchError('E_UNSUPPORTED', `filter not set: ${unknownFlowText(u, this.backend)}${remedy}`);
    }
    return this.applyExpr(expr);
  }

  /** What did not fit the kernel's filter and cannot be tested by dropwatch in `mode` (the current one when null). */
  private async tooLong(split: KernelSplit | null, mode: AlertMode | null): Promise<TooLong | null> {
    if (split === null || split.split.tooLong === null) return null;
    const m = mode ?? (await currentMode(this.backend));
    return m === null ? null : tooLongIn(this.backend.capabilities, split, m);
  }

  /** Why the filter in force cannot be evaluated in `mode` (the current one when null), with how to clear it. */
  private async inForce(
    mode: AlertMode | null,
    clear: (u: { knownIn: AlertMode | null }) => string,
  ): Promise<string | null> {
    const fromBase = await unknownIn(this.backend, this.base, mode);
    if (fromBase !== null)
      return `the --filter of this run reads a flow field: ${unknownFlowText(fromBase, this.backend)} (it stays for the run)`;
    const fromPrompt = await unknownIn(this.backend, this.prompt, mode);
    if (fromPrompt !== null)
      return `the filter in force reads a flow field: ${unknownFlowText(fromPrompt, this.backend)} (${clear(fromPrompt)})`;
    const tooLong = await this.tooLong(this.kernelSplit, mode);
    if (tooLong === null) return null;
    const way = this.prompt === null ? 'it stays for the run' : clear(tooLong);
    return `the filter in force is ${tooLongText(tooLong, this.backend)} (${way})`;
  }

  /** The filter in force, as far as dropwatch evaluates it (the kernel's part always sees its fields). */
  private async check(): Promise<string | null> {
    if (this.userExpr === null) return null;
    const mode = await currentMode(this.backend);
    if (mode === null) return null;
    const why = this.unreported(mode);
    const used = fieldsOf(this.userExpr);
    const unknown = new Set([...why.keys()].filter((f) => used.has(f)));
    const verdict = constantWithout(this.userExpr, unknown);
    if (verdict === null) return null;
    const causes = [...unknown].map((f) => why.get(f)!).join('; ');
    return verdict
      ? `dropwatch: this filter lets every drop through: ${causes}`
      : `dropwatch: this filter can never match: ${causes}`;
  }

  /** The fields this backend does not report in `mode`, each with why. */
  private unreported(mode: AlertMode): Map<Field, string> {
    const why = new Map<Field, string>();
    const { fields } = this.backend.capabilities;
    for (const [field, needs] of REPORTED_AS) {
      if (testable(this.backend.capabilities, mode, [field, needs])) continue;
      const elsewhere = testable(this.backend.capabilities, other(mode), [field, needs])
        ? ` (${other(mode)} mode reports it)`
        : '';
      why.set(field, `${field} is not reported by the ${this.backend.name} backend in ${mode} mode${elsewhere}`);
    }
    const gap = fields[mode].includes('symbol') ? null : this.symbols.missing();
    if (gap !== null) why.set('symbol', `symbol is unknown ${gap}`);
    return why;
  }
}

/** `workloads` names namespaces for container and pod; `sources` lets a refusal say which source knows a field. */
export function createFilterControl(
  backend: Backend,
  symbols: SymbolNames,
  base: Expr | null = null,
  workloads: WorkloadSource | null = null,
  sources: readonly SourceInfo[] = [],
): FilterControl {
  return new RunFilter(backend, symbols, base, workloads, sources);
}
