// Connects the filter language to a backend: its kernel filter, when it has one, evaluates what it can; the rest runs
// per drop here.
import type { Backend, PacketDrop, SummaryEntry } from '../backend/types.js';
import {
  compile,
  conjoin,
  format,
  parse,
  pushdown,
  recordFromPacket,
  recordFromSummary,
  type Expr,
} from '../filter/index.js';
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

const isSummary = (d: SummaryEntry | PacketDrop): d is SummaryEntry => 'count' in d;

export function createFilterControl(backend: Backend, symbols: Symbols, base: Expr | null = null): FilterControl {
  let predicate: DropPredicate | null = null;
  let description: string | null = null;
  const { kernelFilter } = backend.capabilities;

  async function applyExpr(expr: Expr | null): Promise<string> {
    const whole = conjoin(base, expr);
    if (whole === null) {
      await kernelFilter?.apply(null);
      predicate = null;
      description = null;
      return 'filter cleared';
    }
    let kernel: string | null = null;
    let userExpr: Expr | null = whole;
    if (kernelFilter) {
      const split = pushdown(whole, kernelFilter.reasons);
      kernel = split.kernel;
      userExpr = split.userExpr;
      await kernelFilter.apply(kernel);
    }
    if (userExpr === null) predicate = null;
    else {
      const test = compile(userExpr);
      const name = (pc: bigint | undefined) => (pc === undefined ? null : (symbols.lookup(pc)?.symbol ?? null));
      predicate = (d) =>
        test(isSummary(d) ? recordFromSummary(d, name(d.pc)) : recordFromPacket(d, d.symbol ? undefined : name(d.pc)));
    }
    const where = [kernel ? `kernel: ${kernel}` : null, userExpr ? `dropwatch: ${format(userExpr)}` : null];
    description = `${format(whole)} (${where.filter(Boolean).join('; ')})`;
    return `filter set: ${description}`;
  }

  return {
    applyExpr,
    predicate: () => predicate,
    describe: () => description,
    compiler: {
      apply: (text) => applyExpr(text === null ? null : parse(text)),
    },
  };
}
