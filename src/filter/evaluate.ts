// Compiles a filter tree into a predicate over one drop, with fixed rules for fields the source did not report.

import type { Expr, Field } from './ast.js';
import type { Origin, PacketDrop, SummaryEntry } from '../backend/types.js';

/** What a filter sees of one drop. null means the source did not report that field. */
export interface FilterRecord {
  reason: string | null;
  /** Resolved function name, without offset or module (see symbolName). */
  symbol: string | null;
  origin: Origin;
  protocol: number | null;
  ifindex: number | null;
  ifname: string | null;
}

export type Predicate = (r: FilterRecord) => boolean;

/**
 * Null semantics: a missing field equals nothing and matches no regex, so `==` and `=~` are false and their
 * negations `!=` and `!~` are true. Each negated operator is therefore exactly `!` of its positive form.
 */
export function compile(e: Expr): Predicate {
  switch (e.type) {
    case 'and': {
      const ps = e.args.map(compile);
      return (r) => {
        for (const p of ps) if (!p(r)) return false;
        return true;
      };
    }
    case 'or': {
      const ps = e.args.map(compile);
      return (r) => {
        for (const p of ps) if (p(r)) return true;
        return false;
      };
    }
    case 'not': {
      const p = compile(e.arg);
      return (r) => !p(r);
    }
    case 'cmp': {
      const { field, value } = e;
      return e.op === '==' ? (r) => r[field] === value : (r) => r[field] !== value;
    }
    case 'match': {
      const test = memoized(new RegExp(e.pattern, e.flags));
      const field = e.field;
      return e.op === '=~'
        ? (r) => {
            const v = r[field];
            return v !== null && test(v);
          }
        : (r) => {
            const v = r[field];
            return v === null || !test(v);
          };
    }
  }
}

/**
 * What `e` gives for every drop whose `unknown` fields are missing (null), whatever the others hold: false when it
 * can never match, true when it lets every such drop through, null when other fields decide. Mirrors compile()'s
 * null semantics, so a filter on a field the source cannot report (or a symbol with addresses hidden) can be named.
 */
export function constantWithout(e: Expr, unknown: ReadonlySet<Field>): boolean | null {
  switch (e.type) {
    case 'and': {
      let all = true;
      for (const a of e.args) {
        const v = constantWithout(a, unknown);
        if (v === false) return false;
        if (v === null) all = false;
      }
      return all ? true : null;
    }
    case 'or': {
      let none = true;
      for (const a of e.args) {
        const v = constantWithout(a, unknown);
        if (v === true) return true;
        if (v === null) none = false;
      }
      return none ? false : null;
    }
    case 'not': {
      const v = constantWithout(e.arg, unknown);
      return v === null ? null : !v;
    }
    case 'cmp':
    case 'match':
      // origin is never missing; a missing field equals nothing and matches no pattern.
      if (e.field === 'origin' || !unknown.has(e.field)) return null;
      return e.op === '!=' || e.op === '!~';
  }
}

// Distinct values a pattern remembers its answer for; a storm of new ones clears it rather than growing it.
const MEMO_LIMIT = 4096;

/**
 * A pattern's test, run once per distinct value: drops come from few locations, so a slow (backtracking) pattern
 * costs once per location rather than once per drop, and cannot hold up the event loop (and `-d`) in a storm.
 */
function memoized(re: RegExp): (value: string) => boolean {
  // No g or y flag is accepted, so test() keeps no state between calls and its answer depends on the value alone.
  const seen = new Map<string, boolean>();
  return (value) => {
    let hit = seen.get(value);
    if (hit === undefined) {
      hit = re.test(value);
      if (seen.size >= MEMO_LIMIT) seen.clear();
      seen.set(value, hit);
    }
    return hit;
  };
}

/** Function name of a `%pS` location: `__udp4_lib_rcv+0x9a2/0xc30 [mod]` → `__udp4_lib_rcv`. */
export function symbolName(location: string): string {
  let end = location.length;
  const plus = location.indexOf('+');
  if (plus >= 0) end = plus;
  const space = location.indexOf(' ');
  if (space >= 0 && space < end) end = space;
  return location.slice(0, end);
}

/** Filter record of a summary entry; `symbol` is the caller's resolved name for entry.pc, if any. */
export function recordFromSummary(entry: SummaryEntry, symbol: string | null = null): FilterRecord {
  return { reason: entry.reason, symbol, origin: entry.origin, protocol: null, ifindex: null, ifname: null };
}

/** Filter record of a packet; `symbol` overrides the name taken from packet.symbol (e.g. after kallsyms lookup). */
export function recordFromPacket(p: PacketDrop, symbol?: string | null): FilterRecord {
  return {
    reason: p.reason ?? null,
    symbol: symbol !== undefined ? symbol : p.symbol !== undefined ? symbolName(p.symbol) : null,
    origin: p.origin,
    protocol: p.protocol ?? null,
    ifindex: p.inPort?.ifindex ?? null,
    ifname: p.inPort?.name ?? null,
  };
}
