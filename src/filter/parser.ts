// Recursive-descent parser for the filter language; precedence ! > && > ||, errors carry a column.

import {
  FIELD_ALIASES,
  FIELDS,
  TEXT_FIELDS,
  isAddressField,
  isNumberField,
  isTextField,
  junction,
  type AddressField,
  type Expr,
  type Field,
  type NameField,
  type NumberField,
  type TextField,
} from './ast.js';
import { columnOf, describe, FilterSyntaxError } from './error.js';
import { tokenize, type Token } from './lexer.js';
import { canonicalAddress, familyOf, L3_NAMES, L4_BY_NAME, maxPrefix } from './values.js';

type Operator = '==' | '!=' | '=~' | '!~' | 'in' | 'not in';

/** Longest expression accepted; anything longer is almost certainly a mistake (and the kernel takes < 4 kB). */
export const MAX_LENGTH = 65536;
/** Deepest parenthesis nesting; keeps every recursive walk of the tree far from the stack limit. */
export const MAX_DEPTH = 64;

/** Protocol names users may write instead of an EtherType number. */
export const PROTOCOL_NAMES: ReadonlyMap<string, number> = new Map([
  ['ip', 0x0800],
  ['ipv4', 0x0800],
  ['ipv6', 0x86dd],
  ['arp', 0x0806],
]);

const LIMITS: Readonly<Record<NumberField, number>> = {
  protocol: 0xffff,
  ifindex: 0xffffffff,
  netns: 0xffffffff,
  l4: 255,
  sport: 0xffff,
  dport: 0xffff,
};

/**
 * Normalise a drop reason name: upper case, without the kernel's SKB_DROP_REASON_ prefix.
 * Returns null when the text cannot be a reason name at all.
 */
export function normalizeReason(name: string): string | null {
  let s = name.toUpperCase();
  if (s.startsWith('SKB_DROP_REASON_') && s.length > 16) s = s.slice(16);
  if (s.length === 0) return null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    const ok = (c >= 'A' && c <= 'Z') || c === '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return null;
  }
  return s;
}

/** Parse a filter expression. Throws FilterSyntaxError (a DropwatchError, code E_BAD_INPUT) with a column. */
export function parse(src: string): Expr {
  return new Parser(src, 'filter').parseAll();
}

class Parser {
  private readonly tokens: Token[];
  private at = 0;
  private depth = 0;

  constructor(
    private readonly src: string,
    private readonly prefix: string,
  ) {
    if (src.length > MAX_LENGTH)
      this.fail(`expression too long (${src.length} characters, limit ${MAX_LENGTH})`, MAX_LENGTH);
    this.tokens = tokenize(src, prefix);
  }

  parseAll(): Expr {
    if (this.peek().kind === 'eof') this.fail('empty expression', this.peek().pos);
    const e = this.parseOr();
    const t = this.peek();
    if (t.kind === ')') this.fail("unmatched ')'", t.pos);
    if (t.kind !== 'eof') this.fail(`expected '&&', '||' or end of expression, found ${this.show(t)}`, t.pos);
    return e;
  }

  private fail(what: string, index: number): never {
    throw new FilterSyntaxError(this.prefix, what, columnOf(this.src, index));
  }

  private peek(): Token {
    return this.tokens[this.at]!;
  }

  private next(): Token {
    const t = this.tokens[this.at]!;
    if (t.kind !== 'eof') this.at++;
    return t;
  }

  private show(t: Token): string {
    return t.kind === 'eof' ? 'end of expression' : describe(t.text);
  }

  private parseOr(): Expr {
    const args = [this.parseAnd()];
    while (this.peek().kind === '||') {
      this.next();
      args.push(this.parseAnd());
    }
    return junction('or', args);
  }

  private parseAnd(): Expr {
    const args = [this.parseUnary()];
    while (this.peek().kind === '&&') {
      this.next();
      args.push(this.parseUnary());
    }
    return junction('and', args);
  }

  private parseUnary(): Expr {
    // Counted, not recursive: a long run of '!' must not grow the stack; !!x is x.
    let nots = 0;
    while (this.peek().kind === '!') {
      this.next();
      nots++;
    }
    const e = this.parsePrimary();
    return nots % 2 === 1 ? { type: 'not', arg: e } : e;
  }

  private parsePrimary(): Expr {
    const t = this.peek();
    if (t.kind === '(') {
      this.next();
      if (++this.depth > MAX_DEPTH) this.fail(`parentheses nested too deeply (limit ${MAX_DEPTH})`, t.pos);
      const e = this.parseOr();
      const close = this.peek();
      if (close.kind === 'eof') this.fail("unclosed '('", t.pos);
      if (close.kind !== ')') this.fail(`expected '&&', '||' or ')', found ${this.show(close)}`, close.pos);
      this.next();
      this.depth--;
      return e;
    }
    return this.parseComparison();
  }

  /** A leaf: field, operator, value; each is checked against the others so the message names the real problem. */
  private parseComparison(): Expr {
    const field = this.parseField();
    const ot = this.next();
    const op = this.operatorOf(ot, field);
    const vt = this.parseValueToken(op);
    if (op === '=~' || op === '!~') return this.parseMatch(field, op, ot, vt);
    if (isAddressField(field)) return this.parseAddress(field, op, vt);
    if (op === 'in' || op === 'not in')
      return this.fail(`'${op}' needs an address field (src, dst), not '${field}'`, ot.pos);
    if (vt.kind === 'regex') this.fail(`a regular expression needs '=~' or '!~', not '${op}'`, vt.pos);
    if (isNumberField(field)) return this.parseNumberComparison(field, op, vt);
    return this.parseNameComparison(field, op, vt);
  }

  private parseField(): Field {
    const ft = this.next();
    if (ft.kind !== 'word') this.fail(`expected a field name, found ${this.show(ft)}`, ft.pos);
    const field = FIELD_ALIASES.get(ft.str!) ?? (ft.str as Field);
    if (!FIELDS.includes(field)) {
      const all = [...FIELDS, ...FIELD_ALIASES.keys()];
      this.fail(`unknown field ${describe(ft.text)} (fields: ${all.join(', ')})`, ft.pos);
    }
    return field;
  }

  /** The operator `ot` starts; 'not' takes the 'in' after it. The error lists what `field` accepts. */
  private operatorOf(ot: Token, field: Field): Operator {
    if (ot.kind === '==' || ot.kind === '!=' || ot.kind === '=~' || ot.kind === '!~') return ot.kind;
    if (ot.kind === 'word' && ot.str === 'in') return 'in';
    if (ot.kind === 'word' && ot.str === 'not' && this.peek().kind === 'word' && this.peek().str === 'in') {
      this.next();
      return 'not in';
    }
    const ops = isTextField(field)
      ? "'==', '!=', '=~' or '!~'"
      : isAddressField(field)
        ? "'==', '!=', 'in' or 'not in'"
        : "'==' or '!='";
    return this.fail(`expected ${ops} after '${field}', found ${this.show(ot)}`, ot.pos);
  }

  /** The token after the operator, which must be some kind of value; which kind fits is checked later. */
  private parseValueToken(op: Operator): Token {
    const vt = this.next();
    if (
      vt.kind !== 'word' &&
      vt.kind !== 'string' &&
      vt.kind !== 'number' &&
      vt.kind !== 'regex' &&
      vt.kind !== 'address'
    ) {
      this.fail(
        vt.kind === 'eof' ? `expected a value after '${op}'` : `expected a value after '${op}', found ${this.show(vt)}`,
        vt.pos,
      );
    }
    return vt;
  }

  /** `=~`/`!~`: a text field against a regular expression, compiled once here so a bad one fails at parse time. */
  private parseMatch(field: Field, op: '=~' | '!~', ot: Token, vt: Token): Expr {
    if (!isTextField(field))
      return this.fail(`'${op}' needs a text field (${TEXT_FIELDS.join(', ')}), not '${field}'`, ot.pos);
    if (vt.kind !== 'regex' && vt.kind !== 'string') {
      this.fail(`'${op}' needs a /regular expression/ or a quoted string, found ${this.show(vt)}`, vt.pos);
    }
    const pattern = vt.str!;
    const flags = vt.flags ?? '';
    try {
      new RegExp(pattern, flags);
    } catch (err) {
      // V8 says "Invalid regular expression: /(/: Unterminated group"; keep the part after the pattern.
      const msg = err instanceof Error ? err.message : String(err);
      const cut = msg.lastIndexOf(': ');
      this.fail(`bad regular expression: ${cut >= 0 ? msg.slice(cut + 2) : msg}`, vt.pos);
    }
    return { type: 'match', field, op, pattern, flags };
  }

  /** A number field against a number, or a protocol or IP protocol name, within the field's range. */
  private parseNumberComparison(field: NumberField, op: '==' | '!=', vt: Token): Expr {
    let value: number;
    const name = vt.kind === 'word' || vt.kind === 'string' ? vt.str!.toLowerCase() : null;
    if (vt.kind === 'number' && vt.bad !== undefined) return this.fail(vt.bad, vt.pos);
    if (vt.kind === 'number') value = vt.num!;
    else if (field === 'protocol' && name !== null && PROTOCOL_NAMES.has(name)) value = PROTOCOL_NAMES.get(name)!;
    else if (field === 'l4' && name !== null && L4_BY_NAME.has(name)) value = L4_BY_NAME.get(name)!;
    else {
      const names =
        field === 'protocol'
          ? ` or one of ${[...PROTOCOL_NAMES.keys()].join(', ')}`
          : field === 'l4'
            ? ' or an IP protocol name (tcp, udp, icmp, icmpv6, sctp, …)'
            : '';
      return this.fail(`'${field}' needs a number${names}, found ${this.show(vt)}`, vt.pos);
    }
    const max = LIMITS[field];
    if (!(value <= max)) {
      // EtherTypes and the 32-bit ifindex read best in hex, ports, protocol numbers and inodes in decimal.
      const shown = field === 'protocol' || field === 'ifindex' ? `0x${max.toString(16)}` : String(max);
      this.fail(`'${field}' must be 0 to ${shown}, found ${this.show(vt)}`, vt.pos);
    }
    return { type: 'cmp', field, op, value };
  }

  /** A text or name field against a word or quoted string, normalised for reason, origin and l3. */
  private parseNameComparison(field: TextField | NameField, op: '==' | '!=', vt: Token): Expr {
    // A container ID (prefix) or a task's name may well start with a digit.
    if (vt.kind === 'number' && (field === 'container' || field === 'comm'))
      return { type: 'cmp', field, op, value: vt.text };
    if (vt.kind === 'number') this.fail(`'${field}' needs a name, found number ${this.show(vt)}`, vt.pos);
    if (vt.kind === 'address') this.fail(`'${field}' needs a name, found ${this.show(vt)}`, vt.pos);
    const raw = vt.str!;
    if (field === 'reason') {
      const value = normalizeReason(raw);
      if (value === null) this.fail(`${this.show(vt)} is not a drop reason name`, vt.pos);
      return { type: 'cmp', field, op, value };
    }
    if (field === 'origin') {
      const v = raw.toLowerCase();
      const value = v === 'software' || v === 'sw' ? 'software' : v === 'hardware' || v === 'hw' ? 'hardware' : null;
      if (value === null) this.fail(`'origin' is software or hardware, found ${this.show(vt)}`, vt.pos);
      return { type: 'cmp', field, op, value };
    }
    if (field === 'l3') {
      const value = L3_NAMES.get(raw.toLowerCase());
      if (value === undefined) return this.fail(`'l3' is ipv4, ipv6 or arp, found ${this.show(vt)}`, vt.pos);
      return { type: 'cmp', field, op, value };
    }
    return { type: 'cmp', field: field, op, value: raw };
  }

  /** `src`/`dst` against an address (`==`, `!=`) or a prefix (`in`, `not in`), bare or quoted. */
  private parseAddress(field: AddressField, op: '==' | '!=' | 'in' | 'not in', vt: Token): Expr {
    let text: string;
    let prefix: string | undefined;
    // Where a bad prefix is pointed at: its digits when bare, the quoted string's start otherwise.
    let prefixAt = vt.pos;
    if (vt.kind === 'address') {
      text = vt.str!;
      prefix = vt.prefix;
      prefixAt = vt.pos + text.length + 1;
    } else if (vt.kind === 'string') {
      const slash = vt.str!.indexOf('/');
      text = slash < 0 ? vt.str! : vt.str!.slice(0, slash);
      if (slash >= 0) prefix = vt.str!.slice(slash + 1);
    } else {
      return this.fail(`'${field}' needs an IPv4 or IPv6 address, found ${this.show(vt)}`, vt.pos);
    }
    const address = canonicalAddress(text);
    if (address === null) return this.fail(`${describe(text)} is not an IPv4 or IPv6 address`, vt.pos);
    if (op === '==' || op === '!=') {
      if (prefix !== undefined) {
        const instead = `${field} ${op === '==' ? 'in' : 'not in'} ${text}/${prefix}`;
        this.fail(`'${op}' compares one address; for a prefix write '${instead}'`, vt.pos);
      }
      return { type: 'addr', field, op, address, prefix: null };
    }
    const family = familyOf(address);
    const max = maxPrefix(family);
    if (prefix === undefined) return { type: 'addr', field, op, address, prefix: max };
    if (prefix.length === 0) this.fail("expected a prefix length after '/'", prefixAt);
    const name = family === 'ipv4' ? 'IPv4' : 'IPv6';
    for (const c of prefix) {
      if (c < '0' || c > '9') this.fail(`bad prefix length ${describe(prefix)} (0 to ${max} for ${name})`, prefixAt);
    }
    const length = prefix.length > 3 ? Infinity : Number(prefix);
    if (length > max) this.fail(`prefix length ${describe(prefix)} is too long for ${name} (0 to ${max})`, prefixAt);
    return { type: 'addr', field, op, address, prefix: length };
  }
}

/** Parse `--ignore-reason A,B,...` into the same tree as `reason != A && reason != B`. */
export function ignoreReasons(list: string): Expr {
  const prefix = 'ignore-reason';
  if (list.length > MAX_LENGTH) {
    throw new FilterSyntaxError(
      prefix,
      `list too long (${list.length} characters, limit ${MAX_LENGTH})`,
      MAX_LENGTH + 1,
    );
  }
  const args: Expr[] = [];
  let start = 0;
  for (;;) {
    let end = list.indexOf(',', start);
    if (end < 0) end = list.length;
    let a = start;
    let b = end;
    while (a < b && (list[a] === ' ' || list[a] === '\t')) a++;
    while (b > a && (list[b - 1] === ' ' || list[b - 1] === '\t')) b--;
    const item = list.slice(a, b);
    if (item.length === 0) {
      throw new FilterSyntaxError(
        prefix,
        end === list.length && start === 0 ? 'empty list' : 'empty reason name',
        columnOf(list, a),
      );
    }
    const value = normalizeReason(item);
    if (value === null)
      throw new FilterSyntaxError(prefix, `${describe(item)} is not a drop reason name`, columnOf(list, a));
    args.push({ type: 'cmp', field: 'reason', op: '!=', value });
    if (end === list.length) break;
    start = end + 1;
  }
  return junction('and', args);
}
