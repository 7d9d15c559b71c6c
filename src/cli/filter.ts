// Connects the filter language to a backend: the kernel evaluates what it can (tracefs), the rest runs per drop here.
import type { Backend, PacketDrop, SummaryEntry } from '../backend/types.js';
import type { Expr } from '../filter/index.js';
import type { DropPredicate, FilterCompiler } from '../repl/index.js';
import { TracefsBackend } from '../tracefs/backend.js';
import type { Symbols } from './render.js';

// The filter language (7 modules) is imported by the first filter set, not at start-up: most runs never set one.
const filterLanguage = () => import('../filter/index.js');

export interface FilterControl {
  compiler: FilterCompiler;
  predicate: () => DropPredicate | null;
  /** Applies a parsed expression (from --filter / --ignore-reason); returns the line to show. */
  applyExpr(expr: Expr | null): Promise<string>;
}

const isSummary = (d: SummaryEntry | PacketDrop): d is SummaryEntry => 'count' in d;

export function createFilterControl(backend: Backend, symbols: Symbols, base: Expr | null = null): FilterControl {
  let predicate: DropPredicate | null = null;

  async function applyExpr(expr: Expr | null): Promise<string> {
    const { compile, conjoin, format, pushdown, recordFromPacket, recordFromSummary } = await filterLanguage();
    const whole = conjoin(base, expr);
    if (whole === null) {
      if (backend instanceof TracefsBackend) await backend.clearFilter();
      predicate = null;
      return 'filter cleared';
    }
    let kernel: string | null = null;
    let userExpr: Expr | null = whole;
    if (backend instanceof TracefsBackend) {
      const split = pushdown(whole, backend.layout.reasons);
      kernel = split.kernel;
      userExpr = split.userExpr;
      if (kernel === null) await backend.clearFilter();
      else await backend.setFilter(kernel);
    }
    if (userExpr === null) predicate = null;
    else {
      const test = compile(userExpr);
      const name = (pc: bigint | undefined) => (pc === undefined ? null : (symbols.lookup(pc)?.symbol ?? null));
      predicate = (d) =>
        test(isSummary(d) ? recordFromSummary(d, name(d.pc)) : recordFromPacket(d, d.symbol ? undefined : name(d.pc)));
    }
    const where = [kernel ? `kernel: ${kernel}` : null, userExpr ? `dropwatch: ${format(userExpr)}` : null];
    return `filter set: ${format(whole)} (${where.filter(Boolean).join('; ')})`;
  }

  return {
    applyExpr,
    predicate: () => predicate,
    compiler: {
      apply: async (text) => applyExpr(text === null ? null : (await filterLanguage()).parse(text)),
    },
  };
}
