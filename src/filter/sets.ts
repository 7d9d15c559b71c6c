// Splits a filter into per-field allow/deny sets a BPF program tests as a conjunction, and a user-space remainder.

import type { KernelSet, KernelSetField, KernelSets } from '../backend/types.js';
import { junction, negate, type Expr } from './ast.js';
import { compile, type Predicate } from './evaluate.js';
import { conjuncts } from './pushdown.js';

export interface SetPushdown {
  /** The sets to install, or null when the kernel decides nothing. */
  kernel: KernelSets | null;
  /** The conjuncts the sets decide, for display; null when none. */
  kernelExpr: Expr | null;
  /** What the sets cannot decide, or null when they decide everything. */
  user: Predicate | null;
  userExpr: Expr | null;
  /** Conjuncts the sets could decide but that did not fit `maxValues` (also in `user`), or null. */
  tooLong: Expr | null;
  /** Values the sets would hold with every part they could decide. */
  kernelLength: number;
}

/** A test on one field (`field` null: a constant, the same for every drop): value in `values` (allow) or not. */
interface Test {
  field: KernelSetField | null;
  allow: boolean;
  values: Set<number | string>;
}

const TRUE = (): Test => ({ field: null, allow: false, values: new Set() });
const FALSE = (): Test => ({ field: null, allow: true, values: new Set() });
const isTrue = (t: Test): boolean => !t.allow && t.values.size === 0;
const isFalse = (t: Test): boolean => t.allow && t.values.size === 0;

type Values = Set<number | string>;
const minus = (a: Values, b: Values): Values => new Set([...a].filter((v) => !b.has(v)));
const both = (a: Values, b: Values): Values => new Set([...a].filter((v) => b.has(v)));
const either = (a: Values, b: Values): Values => new Set([...a, ...b]);

/** Whether a device can have this name: 1 to 15 bytes (IFNAMSIZ less the NUL), no NUL, one byte a character. */
const deviceName = (name: string): boolean => /^[\x01-\xff]{1,15}$/.test(name);

/** a && b on one field (or with a constant); null when they test different fields. */
function and(a: Test, b: Test): Test | null {
  if (isFalse(a) || isFalse(b)) return FALSE();
  if (isTrue(a)) return b;
  if (isTrue(b)) return a;
  if (a.field !== b.field) return null;
  const field = a.field;
  if (a.allow && b.allow) return { field, allow: true, values: both(a.values, b.values) };
  if (!a.allow && !b.allow) return { field, allow: false, values: either(a.values, b.values) };
  const [allow, deny] = a.allow ? [a, b] : [b, a];
  return { field, allow: true, values: minus(allow.values, deny.values) };
}

/** a || b, by De Morgan over and(). */
function or(a: Test, b: Test): Test | null {
  const r = and(not(a), not(b));
  return r === null ? null : not(r);
}

const not = (t: Test): Test => ({ field: t.field, allow: !t.allow, values: t.values });

/**
 * A reason regex decides a number outside the reason table (shown as UNKNOWN(n)) the same way for every n only when
 * its atoms are letters: then `UNKNOWN(0)` stands for them all. Any other regex stays in user space.
 */
const LETTERS_ONLY = /^[A-Za-z_|^$*+?]*$/;

/** The numbers `reasons` names and `test` accepts; null when the names outside the table cannot be decided here. */
function reasonsWhere(pattern: RegExp, reasons: ReadonlyMap<number, string>): Set<number> | null {
  if (!LETTERS_ONLY.test(pattern.source) || pattern.test('UNKNOWN(0)')) return null;
  return new Set([...reasons].filter(([, name]) => pattern.test(name)).map(([n]) => n));
}

/**
 * The model the bpf backend builds records by: reason is the table's name or UNKNOWN(n); protocol the skb's; netns
 * and ifindex null where the kernel says 0 (no namespace, no device), ifname null where it reads no name; origin
 * software, unless `hardware` (trap reports too, whose reason is null and in no set): then origin is left to user
 * space. So `ifindex == 0` matches nothing and a 0 (or an empty name) never enters a set of those.
 */
function translate(e: Expr, reasons: ReadonlyMap<number, string>, hardware: boolean): Test | null {
  switch (e.type) {
    case 'and':
    case 'or': {
      const join = e.type === 'and' ? and : or;
      const parts = e.args.map((a) => translate(a, reasons, hardware));
      // A constant absorbing branch decides the junction even when a sibling cannot be pushed.
      const absorbing = e.type === 'and' ? isFalse : isTrue;
      if (parts.some((t) => t !== null && absorbing(t))) return e.type === 'and' ? FALSE() : TRUE();
      let acc: Test | null = parts[0]!;
      for (const t of parts.slice(1)) acc = acc === null || t === null ? null : join(acc, t);
      return acc;
    }
    case 'not': {
      const t = translate(e.arg, reasons, hardware);
      return t === null ? null : not(t);
    }
    case 'cmp': {
      const positive = e.op === '==';
      let t: Test;
      if (e.field === 'origin') {
        if (hardware) return null;
        t = e.value === 'software' ? TRUE() : FALSE();
      } else if (e.field === 'protocol') t = { field: 'protocol', allow: true, values: new Set([e.value]) };
      else if (e.field === 'netns' || e.field === 'ifindex')
        t = { field: e.field, allow: true, values: new Set(e.value === 0 ? [] : [e.value]) };
      // By name, not ifindex: one name is a different device in each namespace, and devices come and go.
      else if (e.field === 'ifname')
        t = { field: 'ifname', allow: true, values: new Set(deviceName(e.value) ? [e.value] : []) };
      else if (e.field === 'reason')
        t = {
          field: 'reason',
          allow: true,
          values: new Set([...reasons].filter(([, name]) => name === e.value).map(([n]) => n)),
        };
      else return null;
      return positive ? t : not(t);
    }
    case 'match': {
      const re = new RegExp(e.pattern, e.flags);
      let t: Test;
      if (e.field === 'origin') {
        if (hardware) return null;
        t = re.test('software') ? TRUE() : FALSE();
      } else if (e.field === 'reason') {
        const values = reasonsWhere(re, reasons);
        if (values === null) return null;
        t = { field: 'reason', allow: true, values };
      } else return null;
      return e.op === '=~' ? t : not(t);
    }
    case 'addr':
      return null;
  }
}

/** Per field, the tests of the conjuncts the kernel takes, joined; `none` when one can never pass. */
function gather(parts: readonly { source: Expr; t: Test }[]): { none: boolean; tests: Map<KernelSetField, Test> } {
  const tests = new Map<KernelSetField, Test>();
  let none = false;
  for (const { t } of parts) {
    if (isFalse(t)) none = true;
    if (t.field === null) continue;
    const before = tests.get(t.field);
    const joined = before === undefined ? t : and(before, t)!;
    if (isFalse(joined)) none = true;
    tests.set(t.field, joined);
  }
  return { none, tests };
}

const byValue = (a: number | string, b: number | string): number =>
  typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;

const size = (parts: readonly { t: Test }[]): number => parts.reduce((n, p) => n + p.t.values.size, 0);

function toSets({ none, tests }: ReturnType<typeof gather>): KernelSets | null {
  const fields: Partial<Record<KernelSetField, KernelSet>> = {};
  for (const [field, t] of tests)
    if (!isTrue(t)) fields[field] = { allow: t.allow, values: [...t.values].sort(byValue) };
  return none || Object.keys(fields).length > 0 ? { none, fields: none ? {} : fields } : null;
}

/**
 * Split `e` into kernel sets and a user-space predicate so that, for every drop, (the sets pass it) && (user accepts
 * its record) equals e on that record. Only whole top-level conjuncts that translate exactly go to the kernel; one
 * may test several values of one field (`protocol == 1 || protocol == 2`), never two fields. Conjuncts beyond
 * `maxValues` values stay in user space, in order, and are named in `tooLong`. `hardware`: the source reports trap
 * drops too, which the kernel tests with no reason.
 */
export function pushdownSets(
  e: Expr,
  reasons: ReadonlyMap<number, string>,
  maxValues: number,
  hardware = false,
): SetPushdown {
  const parts: { e: Expr; neg: boolean }[] = [];
  conjuncts(e, false, parts);
  const pushed: { source: Expr; t: Test }[] = [];
  const userParts: Expr[] = [];
  for (const { e: c, neg } of parts) {
    const source = neg ? negate(c) : c;
    const t = translate(source, reasons, hardware);
    if (t === null) userParts.push(source);
    else if (!isTrue(t)) pushed.push({ source, t });
  }
  const kernelLength = size(pushed);
  const fits: { source: Expr; t: Test }[] = [];
  const tooLong: Expr[] = [];
  for (const p of pushed) {
    if (size(fits) + p.t.values.size <= maxValues) fits.push(p);
    else tooLong.push(p.source);
  }
  userParts.push(...tooLong);
  const userExpr = userParts.length > 0 ? junction('and', userParts) : null;
  return {
    kernel: toSets(gather(fits)),
    kernelExpr:
      fits.length > 0
        ? junction(
            'and',
            fits.map((p) => p.source),
          )
        : null,
    user: userExpr === null ? null : compile(userExpr),
    userExpr,
    tooLong: tooLong.length > 0 ? junction('and', tooLong) : null,
    kernelLength,
  };
}
