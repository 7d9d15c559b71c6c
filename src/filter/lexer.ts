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
  /** number: its value, or NaN when larger than 2^53. */
  num?: number;
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

export function tokenize(src: string, prefix: string): Token[] {
  const fail = (what: string, index: number): never => {
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
    const start = i;
    const two = src.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '=~' || two === '!~' || two === '&&' || two === '||') {
      tokens.push({ kind: two, pos: start, text: two });
      i += 2;
    } else if (c === '!' || c === '(' || c === ')') {
      tokens.push({ kind: c, pos: start, text: c });
      i++;
    } else if (isAddressStart(src, i)) {
      // Up to a '/', then the prefix; word characters stuck to either are kept, so "10.0.0.1x" is one bad address.
      while (i < n && (isAddressChar(src[i]!) || isWordChar(src[i]!))) i++;
      const str = src.slice(start, i);
      let prefix: string | undefined;
      if (src[i] === '/') {
        const from = ++i;
        while (i < n && (isWordChar(src[i]!) || isAddressChar(src[i]!))) i++;
        prefix = src.slice(from, i);
      }
      tokens.push({
        kind: 'address',
        pos: start,
        text: src.slice(start, i),
        str,
        ...(prefix === undefined ? {} : { prefix }),
      });
    } else if (isWordStart(c)) {
      while (i < n && isWordChar(src[i]!)) i++;
      const text = src.slice(start, i);
      tokens.push({ kind: 'word', pos: start, text, str: text });
    } else if (c >= '0' && c <= '9') {
      // Take the whole run so "0x1g" or "12ab" is reported as one bad number, not a number and a word.
      while (i < n && isWordChar(src[i]!)) i++;
      const text = src.slice(start, i);
      tokens.push({
        kind: 'number',
        pos: start,
        text,
        num: parseNumber(text, () => fail(`bad number ${describe(text)}`, start)),
      });
      if (text.length > 1 && text[0] === '0' && text[1] !== 'x' && text[1] !== 'X') {
        fail(
          `ambiguous number ${describe(text)} (write 0x${text.slice(1)} for hex or ${BigInt(text)} for decimal)`,
          start,
        );
      }
    } else if (c === '"' || c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= n) fail('unterminated string', start);
        const d = src[i]!;
        if (d === c) break;
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
      tokens.push({ kind: 'string', pos: start, text: src.slice(start, i), str: value });
    } else if (c === '/') {
      // JavaScript regex literal: '\' escapes the next character, and '/' does not end it inside [...].
      let pattern = '';
      let inClass = false;
      i++;
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
      i++;
      const flagStart = i;
      while (i < n && isWordChar(src[i]!)) i++;
      const flags = src.slice(flagStart, i);
      const seen = new Set<string>();
      for (let k = 0; k < flags.length; k++) {
        const f = flags[k]!;
        if (!'imsu'.includes(f))
          fail(`unsupported regular expression flag ${describe(f)} (use i, m, s or u)`, flagStart + k);
        if (seen.has(f)) fail(`repeated regular expression flag ${describe(f)}`, flagStart + k);
        seen.add(f);
      }
      tokens.push({ kind: 'regex', pos: start, text: src.slice(start, i), str: pattern, flags });
    } else {
      const cp = String.fromCodePoint(src.codePointAt(i)!);
      fail(HINTS[c] ?? `unexpected character ${describe(cp)}`, start);
    }
  }
  tokens.push({ kind: 'eof', pos: n, text: '' });
  return tokens;
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

function parseNumber(text: string, bad: () => never): number {
  let digits = text;
  let radix = 10;
  if (text.length > 1 && (text[1] === 'x' || text[1] === 'X') && text[0] === '0') {
    digits = text.slice(2);
    radix = 16;
  }
  if (digits.length === 0) bad();
  for (const d of digits) {
    const ok = (d >= '0' && d <= '9') || (radix === 16 && ((d >= 'a' && d <= 'f') || (d >= 'A' && d <= 'F')));
    if (!ok) bad();
  }
  const v = parseInt(digits, radix);
  return Number.isSafeInteger(v) ? v : NaN;
}
