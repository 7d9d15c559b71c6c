// The filter expression tree, shared by the parser, the evaluator, kernel pushdown and --ignore-reason.

import { l4Name } from './values.js';
import {
  type TextField,
  type NameField,
  type NumberField,
  type AddressField,
  type Field,
  TEXT_FIELDS,
  NUMBER_FIELDS,
  ADDRESS_FIELDS,
} from './fields.js';

// The field names live in fields.ts, light for the help text; the tree's users take them from here too.
export * from './fields.js';

export function isTextField(f: Field): f is TextField {
  return (TEXT_FIELDS as readonly string[]).includes(f);
}
export function isNumberField(f: Field): f is NumberField {
  return (NUMBER_FIELDS as readonly string[]).includes(f);
}
export function isAddressField(f: Field): f is AddressField {
  return (ADDRESS_FIELDS as readonly string[]).includes(f);
}

/**
 * `and`/`or` are n-ary (at least two args, never directly nested in their own kind) so long chains stay shallow.
 * Values are normalised at parse time: reason upper-case without SKB_DROP_REASON_, origin software|hardware,
 * l3 ipv4|ipv6|arp, protocol, ifindex, netns (a namespace inode), l4 and ports numbers, addresses in canonical text. An `addr` node compares
 * src or dst by value: `==`/`!=` with one address (prefix null), `in`/`not in` with a prefix.
 */
export type Expr =
  | { type: 'and'; args: Expr[] }
  | { type: 'or'; args: Expr[] }
  | { type: 'not'; arg: Expr }
  | { type: 'cmp'; field: TextField | NameField; op: '==' | '!='; value: string }
  | { type: 'cmp'; field: NumberField; op: '==' | '!='; value: number }
  | { type: 'match'; field: TextField; op: '=~' | '!~'; pattern: string; flags: string }
  | { type: 'addr'; field: AddressField; op: '==' | '!=' | 'in' | 'not in'; address: string; prefix: number | null };

export type CmpExpr = Extract<Expr, { type: 'cmp' }>;
export type MatchExpr = Extract<Expr, { type: 'match' }>;
export type AddrExpr = Extract<Expr, { type: 'addr' }>;

/** Whether a leaf's operator is the negated one, true for a missing field: `!=`, `!~`, `not in`. */
export function negatedOp(op: (CmpExpr | MatchExpr | AddrExpr)['op']): boolean {
  return op === '!=' || op === '!~' || op === 'not in';
}

/** Build an n-ary and/or, flattening children of the same kind; one argument is returned as is. */
export function junction(type: 'and' | 'or', args: readonly Expr[]): Expr {
  const flat: Expr[] = [];
  for (const a of args) {
    if (a.type === type) flat.push(...a.args);
    else flat.push(a);
  }
  if (flat.length === 0) throw new Error(`junction(${type}) of nothing`);
  return flat.length === 1 ? flat[0]! : { type, args: flat };
}

/** AND of the given expressions, skipping nulls (e.g. --filter combined with --ignore-reason); null if none. */
export function conjoin(...exprs: (Expr | null | undefined)[]): Expr | null {
  const present = exprs.filter((e): e is Expr => e != null);
  return present.length === 0 ? null : junction('and', present);
}

export function negate(e: Expr): Expr {
  return e.type === 'not' ? e.arg : { type: 'not', arg: e };
}

/** Every field the expression reads, e.g. so the CLI can warn that ifindex is only known in packet mode. */
export function fieldsOf(e: Expr, into: Set<Field> = new Set()): Set<Field> {
  switch (e.type) {
    case 'and':
    case 'or':
      for (const a of e.args) fieldsOf(a, into);
      break;
    case 'not':
      fieldsOf(e.arg, into);
      break;
    default:
      into.add(e.field);
  }
  return into;
}

/** Reason names the expression compares with `==`/`!=` that the given reason table lacks (typos, other kernels). */
export function unknownReasons(e: Expr, reasons: ReadonlyMap<number, string>): string[] {
  const known = new Set(reasons.values());
  const out = new Set<string>();
  const walk = (x: Expr): void => {
    if (x.type === 'and' || x.type === 'or') x.args.forEach(walk);
    else if (x.type === 'not') walk(x.arg);
    else if (x.type === 'cmp' && x.field === 'reason' && !known.has(x.value)) out.add(x.value);
  };
  walk(e);
  return [...out];
}

// Characters a bare word may hold: symbol names like ip_rcv_finish_core.isra.0 and interface names like br-lan.
export function isWordStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}
export function isWordChar(c: string): boolean {
  return isWordStart(c) || (c >= '0' && c <= '9') || c === '.' || c === '-';
}

function isBareWord(s: string): boolean {
  if (s.length === 0 || !isWordStart(s[0]!)) return false;
  for (const c of s) if (!isWordChar(c)) return false;
  return true;
}

function quote(s: string): string {
  let out = '"';
  for (const c of s) out += c === '"' || c === '\\' ? '\\' + c : c;
  return out + '"';
}

// Inverse of the lexer's regex literal reading: a bare '/' must be escaped, existing escapes are kept as they are.
function regexLiteral(pattern: string, flags: string): string {
  let out = '/';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) {
      out += c + pattern[++i];
    } else out += c === '/' ? '\\/' : c;
  }
  return out + '/' + flags;
}

function formatValue(e: CmpExpr): string {
  if (e.field === 'protocol') return '0x' + e.value.toString(16).padStart(4, '0');
  if (e.field === 'l4') return l4Name(e.value);
  if (typeof e.value === 'number') return String(e.value);
  return isBareWord(e.value) ? e.value : quote(e.value);
}

/** Canonical text of an expression; parse(format(e)) gives e back. */
export function format(e: Expr): string {
  switch (e.type) {
    case 'and':
      return e.args.map((a) => (a.type === 'or' ? `(${format(a)})` : format(a))).join(' && ');
    case 'or':
      return e.args.map(format).join(' || ');
    case 'not':
      return `!(${format(e.arg)})`;
    case 'cmp':
      return `${e.field} ${e.op} ${formatValue(e)}`;
    case 'match':
      return `${e.field} ${e.op} ${regexLiteral(e.pattern, e.flags)}`;
    case 'addr':
      return `${e.field} ${e.op} ${e.address}${e.prefix === null ? '' : `/${e.prefix}`}`;
  }
}
