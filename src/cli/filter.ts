// Connects the filter language to a backend: its kernel filter, when it has one, evaluates what it can; the rest runs
// per drop here.
import type { AlertMode, Backend, BackendCapabilities, DropField, PacketDrop, SummaryEntry } from '../backend/types.js';
import {
  compile,
  conjoin,
  constantWithout,
  fieldsOf,
  FLOW_FIELDS,
  format,
  parse,
  pushdown,
  recordFromPacket,
  recordFromSummary,
  type Expr,
  type Field,
} from '../filter/index.js';
import { DropwatchError, oneLine, shorten } from '../errors/index.js';
import type { DropPredicate, FilterCompiler } from '../repl/index.js';
import type { Symbols } from './render.js';

export interface FilterControl {
  compiler: FilterCompiler;
  predicate: () => DropPredicate | null;
  /** Applies a parsed expression (from --filter / --ignore-reason); returns the line to show. */
  applyExpr(expr: Expr | null): Promise<string>;
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
  ...FLOW_FIELDS.map((f): [Field, DropField] => [f, 'flow']),
];

const other = (mode: AlertMode): AlertMode => (mode === 'summary' ? 'packet' : 'summary');

/** "a", "a and b", "a, b and c". */
function list(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)!}`;
}

/** Flow fields a filter reads that the backend does not report in `mode`, and the mode that does (if any). */
export interface UnknownFlow {
  fields: Field[];
  mode: AlertMode;
  knownIn: AlertMode | null;
}

/**
 * Why a filter cannot be evaluated in `mode`, or null when it can.
 *
 * Flow fields are refused rather than warned about as the older fields are: a filter on the flow means "show me this
 * flow", and quietly matching nothing (or everything) would hide exactly what it asks for. The older fields keep
 * their warning because common runs rely on it, such as --ignore-reason on NET_DM's summary mode (no reasons there).
 */
export function unknownFlow(expr: Expr, capabilities: BackendCapabilities, mode: AlertMode): UnknownFlow | null {
  const { fields } = capabilities;
  if (fields[mode].includes('flow')) return null;
  const used = fieldsOf(expr);
  const missing = FLOW_FIELDS.filter((f) => used.has(f));
  if (missing.length === 0) return null;
  const elsewhere = other(mode);
  const knownIn = capabilities.modes.includes(elsewhere) && fields[elsewhere].includes('flow') ? elsewhere : null;
  return { fields: missing, mode, knownIn };
}

/** "dport is known only in packet mode, not in summary mode", or why this backend never knows it. */
function unknownFlowText(u: UnknownFlow, backend: Backend): string {
  const verb = u.fields.length === 1 ? 'is' : 'are';
  return u.knownIn !== null
    ? `${list(u.fields)} ${verb} known only in ${u.knownIn} mode, not in ${u.mode} mode`
    : `${list(u.fields)} ${verb} not known on the ${backend.name} backend, which decodes no packets`;
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
  if (expr === null || !FLOW_FIELDS.some((f) => fieldsOf(expr).has(f))) return null;
  const m = mode ?? (await currentMode(backend));
  return m === null ? null : unknownFlow(expr, backend.capabilities, m);
}

/**
 * Refuses, before anything reaches the kernel, a --filter that reads a flow field this run cannot know: in `mode`
 * (the one -m asks for), or in the backend's current mode when null. Throws E_UNSUPPORTED, one line.
 */
export async function requireKnownFlow(backend: Backend, expr: Expr | null, mode: AlertMode | null): Promise<void> {
  const u = await unknownIn(backend, expr, mode);
  if (u === null) return;
  const remedy = u.knownIn ? `add -m ${u.knownIn}` : "NET_DM's packet mode decodes packets: -b netdm -m packet";
  throw new DropwatchError('E_UNSUPPORTED', `--filter: ${unknownFlowText(u, backend)} (${remedy})`);
}

const isSummary = (d: SummaryEntry | PacketDrop): d is SummaryEntry => 'count' in d;

export function createFilterControl(backend: Backend, symbols: Symbols, base: Expr | null = null): FilterControl {
  /** The part set at the prompt (`set filter`), conjoined to `base` (--filter, --ignore-reason). */
  let prompt: Expr | null = null;
  let predicate: DropPredicate | null = null;
  let description: string | null = null;
  /** The part of the filter dropwatch evaluates, null when none. */
  let userExpr: Expr | null = null;
  const { kernelFilter } = backend.capabilities;

  async function applyExpr(expr: Expr | null): Promise<string> {
    const whole = conjoin(base, expr);
    if (whole === null) {
      await kernelFilter?.apply(null);
      prompt = null;
      predicate = null;
      description = null;
      userExpr = null;
      return 'filter cleared';
    }
    let kernel: string | null = null;
    let rest: Expr | null = whole;
    if (kernelFilter) {
      const split = pushdown(whole, kernelFilter.reasons);
      kernel = split.kernel;
      rest = split.userExpr;
      await kernelFilter.apply(kernel);
    }
    // Only now: a kernel that refused the filter left the previous one in force.
    prompt = expr;
    userExpr = rest;
    if (userExpr === null) predicate = null;
    else {
      const test = compile(userExpr);
      const name = (pc: bigint | undefined) => (pc === undefined ? null : (symbols.lookup(pc)?.symbol ?? null));
      predicate = (d) =>
        test(isSummary(d) ? recordFromSummary(d, name(d.pc)) : recordFromPacket(d, d.symbol ? undefined : name(d.pc)));
    }
    const where = [kernel ? `kernel: ${echo(kernel)}` : null, userExpr ? `dropwatch: ${echo(format(userExpr))}` : null];
    description = `${echo(format(whole))} (${where.filter(Boolean).join('; ')})`;
    return `filter set: ${description}`;
  }

  /** Refuses to set a filter the current mode cannot evaluate; the filter in force stays. */
  async function apply(text: string | null): Promise<string> {
    const expr = text === null ? null : parse(text);
    const u = await unknownIn(backend, expr, null);
    if (u !== null) {
      const remedy = u.knownIn ? ` (set alertmode ${u.knownIn} first)` : '';
      throw new DropwatchError('E_UNSUPPORTED', `filter not set: ${unknownFlowText(u, backend)}${remedy}`);
    }
    return applyExpr(expr);
  }

  /** Why the filter in force cannot be evaluated in `mode` (the current one when null), with how to clear it. */
  async function inForce(mode: AlertMode | null, clear: (u: UnknownFlow) => string): Promise<string | null> {
    const fromBase = await unknownIn(backend, base, mode);
    if (fromBase !== null)
      return `the --filter of this run reads a flow field: ${unknownFlowText(fromBase, backend)} (it stays for the run)`;
    const fromPrompt = await unknownIn(backend, prompt, mode);
    if (fromPrompt === null) return null;
    return `the filter in force reads a flow field: ${unknownFlowText(fromPrompt, backend)} (${clear(fromPrompt)})`;
  }

  /** The filter in force, as far as dropwatch evaluates it (the kernel's part always sees its fields). */
  async function check(): Promise<string | null> {
    if (userExpr === null) return null;
    let mode: AlertMode;
    try {
      mode = (await backend.getConfig()).alertMode;
    } catch {
      return null;
    }
    const why = new Map<Field, string>();
    const { fields } = backend.capabilities;
    for (const [field, needs] of REPORTED_AS) {
      if (fields[mode].includes(needs)) continue;
      const elsewhere = fields[other(mode)].includes(needs) ? ` (${other(mode)} mode reports it)` : '';
      why.set(field, `${field} is not reported by the ${backend.name} backend in ${mode} mode${elsewhere}`);
    }
    const gap = fields[mode].includes('symbol') ? null : symbols.missing();
    if (gap !== null) why.set('symbol', `symbol is unknown ${gap}`);
    const used = fieldsOf(userExpr);
    const unknown = new Set([...why.keys()].filter((f) => used.has(f)));
    const verdict = constantWithout(userExpr, unknown);
    if (verdict === null) return null;
    const causes = [...unknown].map((f) => why.get(f)!).join('; ');
    return verdict
      ? `dropwatch: this filter lets every drop through: ${causes}`
      : `dropwatch: this filter can never match: ${causes}`;
  }

  return {
    applyExpr,
    predicate: () => predicate,
    describe: () => description,
    compiler: {
      apply,
      check,
      refuseMode: async (mode) => {
        const why = await inForce(mode, () => 'set filter none first');
        return why === null ? null : `alert mode not set: ${why}`;
      },
      refuseStart: async () => {
        const why = await inForce(null, (u) =>
          u.knownIn ? `set alertmode ${u.knownIn}, or set filter none` : 'set filter none',
        );
        return why === null ? null : `monitoring not started: ${why}`;
      },
    },
  };
}
