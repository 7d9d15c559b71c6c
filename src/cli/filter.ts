// Connects the filter language to a backend: its kernel filter, when it has one, evaluates what it can; the rest runs
// per drop here.
import type { AlertMode, Backend, DropField, PacketDrop, SummaryEntry } from '../backend/types.js';
import {
  compile,
  conjoin,
  constantWithout,
  fieldsOf,
  format,
  parse,
  pushdown,
  recordFromPacket,
  recordFromSummary,
  type Expr,
  type Field,
} from '../filter/index.js';
import { oneLine, shorten } from '../errors/index.js';
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
];

const isSummary = (d: SummaryEntry | PacketDrop): d is SummaryEntry => 'count' in d;

export function createFilterControl(backend: Backend, symbols: Symbols, base: Expr | null = null): FilterControl {
  let predicate: DropPredicate | null = null;
  let description: string | null = null;
  /** The part of the filter dropwatch evaluates, null when none. */
  let userExpr: Expr | null = null;
  const { kernelFilter } = backend.capabilities;

  async function applyExpr(expr: Expr | null): Promise<string> {
    const whole = conjoin(base, expr);
    if (whole === null) {
      await kernelFilter?.apply(null);
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
    const other: AlertMode = mode === 'summary' ? 'packet' : 'summary';
    for (const [field, needs] of REPORTED_AS) {
      if (fields[mode].includes(needs)) continue;
      const elsewhere = fields[other].includes(needs) ? ` (${other} mode reports it)` : '';
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
      apply: (text) => applyExpr(text === null ? null : parse(text)),
      check,
    },
  };
}
