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

function conjuncts(e: Expr, neg: boolean, out: { e: Expr; neg: boolean }[]): void {
  if ((e.type === 'and' && !neg) || (e.type === 'or' && neg)) for (const a of e.args) conjuncts(a, neg, out);
  else if (e.type === 'not') conjuncts(e.arg, !neg, out);
  else out.push({ e, neg });
}

/**
 * Split `e` into a kernel filter for skb:kfree_skb and a user-space predicate so that, for every event,
 * (kernel accepts it) && (user accepts its record) equals e on that record. `reasons` is this kernel's
 * reason table (number → name, from the event's format file). Only whole top-level conjuncts that translate
 * exactly are pushed down.
 */
export function pushdown(e: Expr, reasons: ReadonlyMap<number, string>, maxLength = KERNEL_FILTER_MAX): Pushdown {
  const parts: { e: Expr; neg: boolean }[] = [];
  conjuncts(e, false, parts);
  const kernelParts: { text: string; or: boolean }[] = [];
  let length = 0;
  const userParts: Expr[] = [];
  for (const { e: c, neg } of parts) {
    const k = translate(c, neg, reasons);
    if (k !== null && k.k === 'true') continue; // always true on tracefs, e.g. origin == software
    if (k !== null && k.k !== 'false') {
      const text = render(k);
      // Counts the parentheses an || part gets when joined with others, and the ' && ' between parts.
      const added = text.length + (k.k === 'or' ? 2 : 0) + (kernelParts.length > 0 ? 4 : 0);
      if (length + added <= maxLength) {
        kernelParts.push({ text, or: k.k === 'or' });
        length += added;
        continue;
      }
    }
    // Not translatable, always false (no ftrace spelling), or over the kernel's length limit.
    userParts.push(neg ? negate(c) : c);
  }
  const userExpr = userParts.length > 0 ? junction('and', userParts) : null;
  return {
    kernel:
      kernelParts.length === 0
        ? null
        : kernelParts.length === 1
          ? kernelParts[0]!.text
          : kernelParts.map((p) => (p.or ? `(${p.text})` : p.text)).join(' && '),
    user: userExpr === null ? null : compile(userExpr),
    userExpr,
  };
}
