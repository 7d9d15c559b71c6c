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
import { oneLine, shorten } from '../errors/index.js';
import type { DropPredicate, FilterCompiler } from '../repl/index.js';
import type { Symbols } from './render.js';

export interface FilterControl {
  compiler: FilterCompiler;
  predicate: () => DropPredicate | null;
  /** Applies a parsed expression (from --filter / --ignore-reason); returns the line to show. */
  applyExpr(expr: Expr | null): Promise<string>;
}

// Code points of each part of the `filter set:` echo; a filter can be 64 KiB, which would flood a terminal or a log.
const ECHO_MAX = 160;

/** A filter as the echo shows it: shortened, and every control or bidi character escaped. */
const echo = (text: string): string => oneLine(shorten(text, ECHO_MAX));

const isSummary = (d: SummaryEntry | PacketDrop): d is SummaryEntry => 'count' in d;

export function createFilterControl(backend: Backend, symbols: Symbols, base: Expr | null = null): FilterControl {
  let predicate: DropPredicate | null = null;
  const { kernelFilter } = backend.capabilities;

  async function applyExpr(expr: Expr | null): Promise<string> {
    const whole = conjoin(base, expr);
    if (whole === null) {
      await kernelFilter?.apply(null);
      predicate = null;
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
    const where = [kernel ? `kernel: ${echo(kernel)}` : null, userExpr ? `dropwatch: ${echo(format(userExpr))}` : null];
    return `filter set: ${echo(format(whole))} (${where.filter(Boolean).join('; ')})`;
  }

  return {
    applyExpr,
    predicate: () => predicate,
    compiler: {
      apply: (text) => applyExpr(text === null ? null : parse(text)),
    },
  };
}
