// Compiles a filter tree into a predicate over one drop, with fixed rules for fields the source did not report.

import { BlockList } from 'node:net';
import { negatedOp, type AddrExpr, type Expr, type Field } from './ast.js';
import { familyOf, l4Number } from './values.js';
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
  /** The network namespace's inode. */
  netns: number | null;
  /** The flow, decoded from the packet's headers (PacketDrop.flow). */
  l3: string | null;
  /** IP protocol number. */
  l4: number | null;
  src: string | null;
  dst: string | null;
  sport: number | null;
  dport: number | null;
}

export type Predicate = (r: FilterRecord) => boolean;

/**
 * Null semantics: a missing field equals nothing, matches no regex and lies in no prefix, so `==`, `=~` and `in` are
 * false and their negations `!=`, `!~` and `not in` are true. Each negated operator is therefore exactly `!` of its
 * positive form.
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
    case 'addr': {
      const test = memoized(addressTest(e));
      const field = e.field;
      return negatedOp(e.op)
        ? (r) => {
            const v = r[field];
            return v === null || !test(v);
          }
        : (r) => {
            const v = r[field];
            return v !== null && test(v);
          };
    }
  }
}

/**
 * Whether an address (as the decoder writes it) is the node's address or lies in its prefix, compared by value with
 * Node's BlockList: `0:0::1` is `::1`, and an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address a.b.c.d.
 */
function addressTest(e: AddrExpr): (address: string) => boolean {
  const list = new BlockList();
  const family = familyOf(e.address);
  if (e.prefix === null) list.addAddress(e.address, family);
  else list.addSubnet(e.address, e.prefix, family);
  // BlockList answers false, without throwing, for text that is no address of that family.
  return (address) => list.check(address, familyOf(address));
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
    case 'addr':
      // origin is never missing; a missing field equals nothing, matches no pattern and lies in no prefix.
      if (e.field === 'origin' || !unknown.has(e.field)) return null;
      return negatedOp(e.op);
  }
}

// Distinct values a pattern remembers its answer for; a storm of new ones clears it rather than growing it.
const MEMO_LIMIT = 4096;

/**
 * A pattern's test, run once per distinct value: drops come from few locations, so a slow (backtracking) pattern
 * costs once per location rather than once per drop, and cannot hold up the event loop (and `-d`) in a storm.
 * Addresses repeat too (a flow drops many packets), so a BlockList lookup is remembered the same way.
 */
function memoized(test: RegExp | ((value: string) => boolean)): (value: string) => boolean {
  // No g or y flag is accepted, so test() keeps no state between calls and its answer depends on the value alone.
  const run = test instanceof RegExp ? (value: string) => test.test(value) : test;
  const seen = new Map<string, boolean>();
  return (value) => {
    let hit = seen.get(value);
    if (hit === undefined) {
      hit = run(value);
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
  return {
    reason: entry.reason,
    symbol,
    origin: entry.origin,
    protocol: null,
    ifindex: null,
    ifname: null,
    netns: null,
    ...NO_FLOW,
  };
}

const NO_FLOW = { l3: null, l4: null, src: null, dst: null, sport: null, dport: null } as const;

/** Filter record of a packet; `symbol` overrides the name taken from packet.symbol (e.g. after kallsyms lookup). */
export function recordFromPacket(p: PacketDrop, symbol?: string | null): FilterRecord {
  return {
    reason: p.reason ?? null,
    symbol: symbol !== undefined ? symbol : p.symbol !== undefined ? symbolName(p.symbol) : null,
    origin: p.origin,
    protocol: p.protocol ?? null,
    ifindex: p.inPort?.ifindex ?? null,
    ifname: p.inPort?.name ?? null,
    netns: p.netns ?? null,
    ...(p.flow === undefined
      ? NO_FLOW
      : {
          l3: p.flow.l3,
          l4: p.flow.l4 === null ? null : l4Number(p.flow.l4),
          src: p.flow.src,
          dst: p.flow.dst,
          sport: p.flow.sport,
          dport: p.flow.dport,
        }),
  };
}
