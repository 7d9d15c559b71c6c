// Splits a filter into an ftrace event filter for skb:kfree_skb and a user-space remainder (tracefs backend only).

import { junction, negate, type Expr } from './ast.js';
import { compile, type Predicate } from './evaluate.js';

/** The kernel rejects filter strings of a page or more; stay well below. */
export const KERNEL_FILTER_MAX = 4000;
/** A reason regex becomes one test per run of consecutive matching numbers; past this many it stays in user space. */
export const MAX_REASON_RANGES = 16;

export interface Pushdown {
  /** For events/skb/kfree_skb/filter, or null when nothing can be pushed down. */
  kernel: string | null;
  /** What the kernel filter cannot decide, or null when the kernel filter decides everything. */
  user: Predicate | null;
  /** The tree `user` was compiled from, for display. */
  userExpr: Expr | null;
  /** Conjuncts the kernel could decide but that did not fit its limit (also in `user`), or null. */
  tooLong: Expr | null;
  /** Characters the kernel filter would take with every part it could decide. */
  kernelLength: number;
}

type KOp = '==' | '!=' | '<' | '>' | '<=' | '>=';
type KExpr =
  | { k: 'true' }
  | { k: 'false' }
  | { k: 'cmp'; field: 'reason' | 'protocol'; op: KOp; value: number }
  | { k: 'and' | 'or'; args: KExpr[] };

const TRUE: KExpr = { k: 'true' };
const FALSE: KExpr = { k: 'false' };

function kJunction(k: 'and' | 'or', args: KExpr[]): KExpr {
  const absorbing = k === 'and' ? 'false' : 'true';
  const flat: KExpr[] = [];
  for (const a of args) {
    if (a.k === absorbing) return a;
    if (a.k === 'true' || a.k === 'false') continue; // the identity element
    if (a.k === k) flat.push(...a.args);
    else flat.push(a);
  }
  if (flat.length === 0) return k === 'and' ? TRUE : FALSE;
  return flat.length === 1 ? flat[0]! : { k, args: flat };
}

/**
 * The model this relies on (the tracefs backend must build records this way): record.reason is
 * reasons.get(event.reason) ?? null, record.protocol is the event's protocol field, origin is always software.
 */
function translate(e: Expr, neg: boolean, reasons: ReadonlyMap<number, string>): KExpr | null {
  switch (e.type) {
    case 'and':
    case 'or': {
      const k = (e.type === 'and') !== neg ? 'and' : 'or';
      const parts = e.args.map((a) => translate(a, neg, reasons));
      // A constant absorbing branch decides the whole junction even if a sibling cannot be pushed down.
      const absorbing = k === 'and' ? 'false' : 'true';
      if (parts.some((p) => p !== null && p.k === absorbing)) return k === 'and' ? FALSE : TRUE;
      if (parts.some((p) => p === null)) return null;
      return kJunction(k, parts as KExpr[]);
    }
    case 'not':
      return translate(e.arg, !neg, reasons);
    case 'cmp': {
      const positive = (e.op === '==') !== neg;
      if (e.field === 'protocol') return { k: 'cmp', field: 'protocol', op: positive ? '==' : '!=', value: e.value };
      if (e.field === 'origin') return (e.value === 'software') === positive ? TRUE : FALSE;
      if (e.field !== 'reason') return null;
      const nums = [...reasons].filter(([, name]) => name === e.value).map(([n]) => n);
      // A name this kernel does not know: leave it to user space rather than guess how the backend renders it.
      if (nums.length === 0) return null;
      nums.sort((a, b) => a - b);
      return kJunction(
        positive ? 'or' : 'and',
        nums.map((value) => ({ k: 'cmp', field: 'reason', op: positive ? '==' : '!=', value })),
      );
    }
    case 'match': {
      const re = new RegExp(e.pattern, e.flags);
      const positive = (e.op === '=~') !== neg;
      if (e.field === 'origin') return re.test('software') === positive ? TRUE : FALSE;
      if (e.field !== 'reason') return null;
      // Expand the regex over this kernel's reason table into runs of consecutive matching numbers.
      const nums = [...reasons].filter(([, name]) => re.test(name)).map(([n]) => n);
      nums.sort((a, b) => a - b);
      const runs: [number, number][] = [];
      for (const n of nums) {
        const last = runs[runs.length - 1];
        if (last !== undefined && n === last[1] + 1) last[1] = n;
        else runs.push([n, n]);
      }
      if (runs.length > MAX_REASON_RANGES) return null;
      const cmp = (op: KOp, value: number): KExpr => ({ k: 'cmp', field: 'reason', op, value });
      const inRun = ([lo, hi]: [number, number]): KExpr =>
        lo === hi ? cmp('==', lo) : kJunction('and', [cmp('>=', lo), cmp('<=', hi)]);
      const outRun = ([lo, hi]: [number, number]): KExpr =>
        lo === hi ? cmp('!=', lo) : kJunction('or', [cmp('<', lo), cmp('>', hi)]);
      return positive ? kJunction('or', runs.map(inRun)) : kJunction('and', runs.map(outRun));
    }
    case 'addr':
      // The event has no packet bytes, so the flow is never in the kernel's reach.
      return null;
  }
}

function render(k: KExpr): string {
  switch (k.k) {
    case 'cmp':
      return `${k.field} ${k.op} ${k.value}`;
    case 'and':
    case 'or':
      // Parenthesise every nested junction rather than rely on the kernel's precedence rules.
      return k.args
        .map((a) => (a.k === 'and' || a.k === 'or' ? `(${render(a)})` : render(a)))
        .join(` ${k.k === 'and' ? '&&' : '||'} `);
    default:
      throw new Error(`constant ${k.k} has no ftrace form`);
  }
}

type Interval = [number, number];

/**
 * The values one part of an `inside` junction tests on one field, as an interval: `f == v` or `f >= lo && f <= hi`
 * in an ||, `f != v` or `f < lo || f > hi` in an &&; null for any other part.
 */
function valueRange(k: KExpr, inside: 'and' | 'or'): { field: 'reason' | 'protocol'; range: Interval } | null {
  const one = inside === 'or' ? '==' : '!=';
  if (k.k === 'cmp') return k.op === one ? { field: k.field, range: [k.value, k.value] } : null;
  if (k.k === 'true' || k.k === 'false' || k.k === inside || k.args.length !== 2) return null;
  const [a, b] = k.args;
  if (a?.k !== 'cmp' || b?.k !== 'cmp' || a.field !== b.field) return null;
  const [low, high] = inside === 'or' ? ['>=', '<='] : ['<', '>'];
  return a.op === low && b.op === high && a.value <= b.value ? { field: a.field, range: [a.value, b.value] } : null;
}

/** The tests for sorted, merged intervals: a range for a run of three values or more, else one test per value. */
function rangeTests(field: 'reason' | 'protocol', ranges: readonly Interval[], inside: 'and' | 'or'): KExpr[] {
  const cmp = (op: KOp, value: number): KExpr => ({ k: 'cmp', field, op, value });
  const out: KExpr[] = [];
  for (const [lo, hi] of ranges) {
    if (hi - lo >= 2)
      out.push(
        inside === 'or'
          ? { k: 'and', args: [cmp('>=', lo), cmp('<=', hi)] }
          : { k: 'or', args: [cmp('<', lo), cmp('>', hi)] },
      );
    else for (let v = lo; v <= hi; v++) out.push(cmp(inside === 'or' ? '==' : '!=', v));
  }
  return out;
}

/** Sorts intervals and joins those that overlap or touch. */
function mergeRanges(ranges: Interval[]): Interval[] {
  ranges.sort((a, b) => a[0] - b[0]);
  const out: Interval[] = [];
  for (const [lo, hi] of ranges) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** Folds the values a junction tests on one field into sorted ranges, in place of the field's first test. */
function fold(k: KExpr): KExpr {
  if (k.k !== 'and' && k.k !== 'or') return k;
  const inside = k.k;
  const ranges = new Map<'reason' | 'protocol', Interval[]>();
  const order: (KExpr | 'reason' | 'protocol')[] = [];
  for (const arg of k.args.map(fold)) {
    const v = valueRange(arg, inside);
    if (v === null) {
      order.push(arg);
      continue;
    }
    const list = ranges.get(v.field);
    if (list) list.push(v.range);
    else {
      ranges.set(v.field, [v.range]);
      order.push(v.field);
    }
  }
  const args = order.flatMap((a) => (typeof a === 'string' ? rangeTests(a, mergeRanges(ranges.get(a)!), inside) : [a]));
  return kJunction(inside, args);
}

/** The top-level conjuncts of `e` (negated where `neg`), each with whether it stands negated. */
export function conjuncts(e: Expr, neg: boolean, out: { e: Expr; neg: boolean }[]): void {
  if ((e.type === 'and' && !neg) || (e.type === 'or' && neg)) for (const a of e.args) conjuncts(a, neg, out);
  else if (e.type === 'not') conjuncts(e.arg, !neg, out);
  else out.push({ e, neg });
}

/** The kernel filter's text for the conjuncts joined by &&, each || part in parentheses. */
function joinConjuncts(texts: readonly { text: string; or: boolean }[]): string | null {
  if (texts.length === 0) return null;
  if (texts.length === 1) return texts[0]!.text;
  return texts.map((p) => (p.or ? `(${p.text})` : p.text)).join(' && ');
}

/**
 * Split `e` into a kernel filter for skb:kfree_skb and a user-space predicate so that, for every event,
 * (kernel accepts it) && (user accepts its record) equals e on that record. `reasons` is this kernel's
 * reason table (number → name, from the event's format file). Only whole top-level conjuncts that translate
 * exactly are pushed down; values tested on one field fold into ranges first, so a long list still fits.
 */
export function pushdown(e: Expr, reasons: ReadonlyMap<number, string>, maxLength = KERNEL_FILTER_MAX): Pushdown {
  const parts: { e: Expr; neg: boolean }[] = [];
  conjuncts(e, false, parts);
  const translated: { source: Expr; k: KExpr }[] = [];
  const userParts: Expr[] = [];
  for (const { e: c, neg } of parts) {
    const k = translate(c, neg, reasons);
    const source = neg ? negate(c) : c;
    if (k !== null && k.k === 'true') continue; // always true on tracefs, e.g. origin == software
    // Not translatable, or always false (no ftrace spelling): user space decides it.
    if (k === null || k.k === 'false') userParts.push(source);
    else translated.push({ source, k });
  }
  const whole = fold(
    kJunction(
      'and',
      translated.map((t) => t.k),
    ),
  );
  const wholeText = whole.k === 'true' ? null : render(whole);
  const kernelLength = wholeText?.length ?? 0;
  let kernel = wholeText;
  const tooLong: Expr[] = [];
  if (kernelLength > maxLength) {
    // Too long as a whole: push whole conjuncts while they fit, and say which did not.
    const pushed: { text: string; or: boolean }[] = [];
    let length = 0;
    for (const { source, k } of translated) {
      const folded = fold(k);
      const text = folded.k === 'true' ? null : render(folded);
      if (text === null) continue;
      // Counts the parentheses an || part gets when joined with others, and the ' && ' between parts.
      const added = text.length + (folded.k === 'or' ? 2 : 0) + (pushed.length > 0 ? 4 : 0);
      if (length + added <= maxLength) {
        pushed.push({ text, or: folded.k === 'or' });
        length += added;
      } else tooLong.push(source);
    }
    kernel = joinConjuncts(pushed);
    userParts.push(...tooLong);
  }
  const userExpr = userParts.length > 0 ? junction('and', userParts) : null;
  return {
    kernel,
    user: userExpr === null ? null : compile(userExpr),
    userExpr,
    tooLong: tooLong.length > 0 ? junction('and', tooLong) : null,
    kernelLength,
  };
}
