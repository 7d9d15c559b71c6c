// Compiles a filter tree into a predicate over one drop, with fixed rules for fields the source did not report.

import { BlockList } from 'node:net';
import { negatedOp, type AddrExpr, type Expr, type Field } from './ast.js';
import { familyOf, l4Number } from './values.js';
import type { DropPlace, Origin, PacketDrop, SummaryEntry } from '../backend/types.js';
import type { Workload } from '../workload/types.js';

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
  /** The full ID and the name of the container in that namespace, and its pod (`namespace/name`), once resolved. */
  container?: string | null;
  containerName?: string | null;
  pod?: string | null;
  /** The task the drop happened in. */
  comm?: string | null;
}

/**
 * Names for a network namespace (src/workload's WorkloadNames.lookup) and the task's cgroup v2 id where the drop names
 * one (for a namespace that names no container), for the fields that need them.
 */
export type NamesOf = (netns: number, cgroup?: number | null) => Pick<Workload, 'container' | 'containerName' | 'pod'>;

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
      if (field === 'container') {
        const is = containerTest(value);
        return e.op === '==' ? is : (r) => !is(r);
      }
      return e.op === '==' ? (r) => (r[field] ?? null) === value : (r) => (r[field] ?? null) !== value;
    }
    case 'match': {
      const test = memoized(new RegExp(e.pattern, e.flags));
      const field = e.field;
      // A container matches by its name or its ID.
      const read =
        field === 'container' ? (r: FilterRecord) => [r.containerName, r.container] : (r: FilterRecord) => [r[field]];
      const some = (r: FilterRecord) => read(r).some((v) => v != null && test(v));
      return e.op === '=~' ? some : (r) => !some(r);
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

/** `container == X`: X is the container's name, or a prefix of its ID (as `docker ps` shortens it). */
function containerTest(value: string): Predicate {
  const id = value.toLowerCase();
  const hex = /^[0-9a-f]+$/.test(id);
  return (r) => r.containerName === value || (hex && r.container != null && r.container.startsWith(id));
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

/** Names of nothing: for a drop without a namespace, or a run that does not resolve names. */
const UNNAMED = { container: null, containerName: null, pod: null } as const;

/** The namespace's (or its task's) names, where the filter reads them (`names` given) and the drop has a namespace. */
const namesOf = (netns: number | null, cgroup: number | null | undefined, names: NamesOf | null) =>
  names === null || netns === null ? UNNAMED : names(netns, cgroup ?? null);

/**
 * Filter record of a summary entry, or of one of its places (a namespace and device); `symbol` is the caller's
 * resolved name for entry.pc, if any; `names` resolves the namespace, only where the filter reads names.
 */
export function recordFromSummary(
  entry: SummaryEntry,
  symbol: string | null = null,
  place: DropPlace | null = null,
  names: NamesOf | null = null,
): FilterRecord {
  const netns = place?.netns ?? null;
  const { container, containerName, pod } = namesOf(netns, place?.cgroup, names);
  return {
    reason: entry.reason,
    symbol,
    origin: entry.origin,
    protocol: null,
    ifindex: place?.ifindex ?? null,
    ifname: place?.ifname ?? null,
    ...NO_FLOW,
    netns,
    container,
    containerName,
    pod,
    comm: place?.comm ?? null,
  };
}

/**
 * The part of a summary entry whose places pass `test` (null stands for drops without a place): the entry itself
 * when all do, a copy with the passing places and their count when some do, null when none does.
 */
export function selectPlaces(entry: SummaryEntry, test: (place: DropPlace | null) => boolean): SummaryEntry | null {
  const places = entry.places;
  if (places === undefined || places.length === 0 || entry.count === 0) return test(null) ? entry : null;
  const kept = places.filter((p) => test(p));
  // Drops the places do not account for are tested as drops without a place, so every count is tested once.
  const rest = entry.count - places.reduce((sum, p) => sum + p.count, 0);
  const restPasses = rest > 0 && test(null);
  if (kept.length === places.length && (rest <= 0 || restPasses)) return entry;
  const count = kept.reduce((sum, p) => sum + p.count, 0) + (restPasses ? rest : 0);
  if (count === 0) return null;
  return { ...entry, count, places: kept };
}

const NO_FLOW = { l3: null, l4: null, src: null, dst: null, sport: null, dport: null } as const;

/** Filter record of a packet; `symbol` overrides the name taken from packet.symbol (e.g. after kallsyms lookup). */
export function recordFromPacket(p: PacketDrop, symbol?: string | null, names: NamesOf | null = null): FilterRecord {
  const netns = p.netns ?? null;
  const { container, containerName, pod } = namesOf(netns, p.cgroup, names);
  return {
    netns,
    container,
    containerName,
    pod,
    comm: p.comm ?? null,
    reason: p.reason ?? null,
    symbol: symbol !== undefined ? symbol : p.symbol !== undefined ? symbolName(p.symbol) : null,
    origin: p.origin,
    protocol: p.protocol ?? null,
    ifindex: p.inPort?.ifindex ?? null,
    ifname: p.inPort?.name ?? null,
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
