// Hand-written scanner: one pass, no regular expressions, so no input can make it backtrack or hang.

import { columnOf, describe, FilterSyntaxError } from './error.js';
import { isWordChar, isWordStart } from './ast.js';

export type TokenKind =
  | 'word'
  | 'string'
  | 'number'
  | 'regex'
  | 'address'
  | '=='
  | '!='
  | '=~'
  | '!~'
  | '&&'
  | '||'
  | '!'
  | '('
  | ')'
  | 'eof';

export interface Token {
  kind: TokenKind;
  /** UTF-16 index of the first character. */
  pos: number;
  /** The source text of the token, for messages. */
  text: string;
  /** word: the word; string: the unescaped contents; regex: the pattern; address: the address before any '/'. */
  str?: string;
  /** address: the text after '/' (a prefix length when well formed), absent without a '/'. */
  prefix?: string;
  /** number: its value, or NaN when larger than 2^53 or not a number at all (then `bad` says why). */
  num?: number;
  /** number: why the text is not a number ("bad number '12ab'"), for a field that needs one. */
  bad?: string;
  /** regex: its flags. */
  flags?: string;
}

const HINTS: Readonly<Record<string, string>> = {
  '=': "unknown operator '=' (did you mean '=='?)",
  '&': "unknown operator '&' (did you mean '&&'?)",
  '|': "unknown operator '|' (did you mean '||'?)",
  '<': "operator '<' is not supported (use ==, !=, =~ or !~)",
  '>': "operator '>' is not supported (use ==, !=, =~ or !~)",
  '~': "unknown operator '~' (did you mean '=~'?)",
};

/** Throws a FilterSyntaxError at a UTF-16 index of the source. */
type Fail = (what: string, index: number) => never;

export function tokenize(src: string, prefix: string): Token[] {
  const fail: Fail = (what, index) => {
    throw new FilterSyntaxError(prefix, what, columnOf(src, index));
  };
  const tokens: Token[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const token = scanToken(src, i, fail);
    tokens.push(token);
    // Every token's text is exactly the source it was read from, so its length is how far to step.
    i += token.text.length;
  }
  tokens.push({ kind: 'eof', pos: n, text: '' });
  return tokens;
}

/** The token that starts at `start`, which is not whitespace. */
function scanToken(src: string, start: number, fail: Fail): Token {
  const c = src[start]!;
  const two = src.slice(start, start + 2);
  if (two === '==' || two === '!=' || two === '=~' || two === '!~' || two === '&&' || two === '||') {
    return { kind: two, pos: start, text: two };
  }
  if (c === '!' || c === '(' || c === ')') return { kind: c, pos: start, text: c };
  if (isAddressStart(src, start)) return scanAddress(src, start);
  if (isWordStart(c)) return scanWord(src, start);
  if (c >= '0' && c <= '9') return scanNumber(src, start, fail);
  if (c === '"' || c === "'") return scanString(src, start, fail);
  if (c === '/') return scanRegex(src, start, fail);
  const cp = String.fromCodePoint(src.codePointAt(start)!);
  return fail(HINTS[c] ?? `unexpected character ${describe(cp)}`, start);
}

/** Up to a '/', then the prefix; word characters stuck to either are kept, so "10.0.0.1x" is one bad address. */
function scanAddress(src: string, start: number): Token {
  const n = src.length;
  let i = start;
  while (i < n && (isAddressChar(src[i]!) || isWordChar(src[i]!))) i++;
  const str = src.slice(start, i);
  let prefix: string | undefined;
  if (src[i] === '/') {
    const from = ++i;
    while (i < n && (isWordChar(src[i]!) || isAddressChar(src[i]!))) i++;
    prefix = src.slice(from, i);
  }
  return {
    kind: 'address',
    pos: start,
    text: src.slice(start, i),
    str,
    ...(prefix === undefined ? {} : { prefix }),
  };
}

/** A word; a '/' between word characters joins, so a pod's `namespace/name` needs no quotes. */
function scanWord(src: string, start: number): Token {
  let end = skipWordChars(src, start);
  while (src[end] === '/' && end + 1 < src.length && isWordChar(src[end + 1]!)) end = skipWordChars(src, end + 1);
  const text = src.slice(start, end);
  return { kind: 'word', pos: start, text, str: text };
}

function scanNumber(src: string, start: number, fail: Fail): Token {
  // Take the whole run so "0x1g" or "12ab" is reported as one bad number, not a number and a word.
  const text = src.slice(start, skipWordChars(src, start));
  const num = parseNumber(text);
  // Not a number, but maybe a name that starts with a digit (a container ID): the parser decides by the field.
  if (num === null) return { kind: 'number', pos: start, text, num: NaN, bad: `bad number ${describe(text)}` };
  if (text.length > 1 && text[0] === '0' && text[1] !== 'x' && text[1] !== 'X') {
    fail(`ambiguous number ${describe(text)} (write 0x${text.slice(1)} for hex or ${BigInt(text)} for decimal)`, start);
  }
  return { kind: 'number', pos: start, text, num };
}

/** A quoted string; '\' takes the next character as it is. */
function scanString(src: string, start: number, fail: Fail): Token {
  const n = src.length;
  const quote = src[start]!;
  let value = '';
  let i = start + 1;
  for (;;) {
    if (i >= n) fail('unterminated string', start);
    const d = src[i]!;
    if (d === quote) break;
    if (d === '\\') {
      if (i + 1 >= n) fail('unterminated string', start);
      value += src[i + 1];
      i += 2;
    } else {
      value += d;
      i++;
    }
  }
  i++;
  return { kind: 'string', pos: start, text: src.slice(start, i), str: value };
}

/** A JavaScript regex literal: '\' escapes the next character, and '/' does not end it inside [...]. */
function scanRegex(src: string, start: number, fail: Fail): Token {
  const n = src.length;
  let pattern = '';
  let inClass = false;
  let i = start + 1;
  for (;;) {
    if (i >= n) fail('unterminated regular expression', start);
    const d = src[i]!;
    if (d === '/' && !inClass) break;
    if (d === '\\') {
      if (i + 1 >= n) fail('unterminated regular expression', start);
      // '\/' means '/', so keep the pattern free of literal-only escapes; format() adds them back.
      pattern += src[i + 1] === '/' ? '/' : d + src[i + 1];
      i += 2;
      continue;
    }
    if (d === '[') inClass = true;
    else if (d === ']') inClass = false;
    pattern += d;
    i++;
  }
  const flagStart = i + 1;
  const end = skipWordChars(src, flagStart);
  const flags = src.slice(flagStart, end);
  checkRegexFlags(flags, flagStart, fail);
  return { kind: 'regex', pos: start, text: src.slice(start, end), str: pattern, flags };
}

/** Flags are i, m, s or u, each at most once; `flagStart` places the error on the bad flag. */
function checkRegexFlags(flags: string, flagStart: number, fail: Fail): void {
  const seen = new Set<string>();
  for (let k = 0; k < flags.length; k++) {
    const f = flags[k]!;
    if (!'imsu'.includes(f))
      fail(`unsupported regular expression flag ${describe(f)} (use i, m, s or u)`, flagStart + k);
    if (seen.has(f)) fail(`repeated regular expression flag ${describe(f)}`, flagStart + k);
    seen.add(f);
  }
}

/** The index just past the run of word characters that starts at `i`. */
function skipWordChars(src: string, i: number): number {
  const n = src.length;
  while (i < n && isWordChar(src[i]!)) i++;
  return i;
}

const isHexDigit = (c: string): boolean => (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
const isAddressChar = (c: string): boolean => isHexDigit(c) || c === ':' || c === '.';

/**
 * Whether an address starts at `i`: a run of hex digits, ':' and '.' that holds a ':' (IPv6), or starts with a digit
 * and holds a '.' (IPv4). No bare word or number qualifies (a word has no ':', a number no '.' or ':'), so their
 * reading is unchanged.
 */
function isAddressStart(src: string, i: number): boolean {
  const first = src[i]!;
  if (!isHexDigit(first) && first !== ':') return false;
  let colon = false;
  let dot = false;
  for (let j = i; j < src.length && isAddressChar(src[j]!); j++) {
    if (src[j] === ':') colon = true;
    else if (src[j] === '.') dot = true;
  }
  return colon || (dot && first >= '0' && first <= '9');
}

/** The number `text` spells, NaN past 2^53, or null when it spells none. */
function parseNumber(text: string): number | null {
  let digits = text;
  let radix = 10;
  if (text.length > 1 && (text[1] === 'x' || text[1] === 'X') && text[0] === '0') {
    digits = text.slice(2);
    radix = 16;
  }
  if (digits.length === 0) return null;
  for (const d of digits) {
    const ok = (d >= '0' && d <= '9') || (radix === 16 && ((d >= 'a' && d <= 'f') || (d >= 'A' && d <= 'F')));
    if (!ok) return null;
  }
  const v = parseInt(digits, radix);
  return Number.isSafeInteger(v) ? v : NaN;
}
