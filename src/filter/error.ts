// The one error type the filter language throws: a DropwatchError that also knows the column to draw a caret under.

import { DropwatchError } from '../errors/index.js';

export class FilterSyntaxError extends DropwatchError {
  /** 1-based column (in code points) of the offending spot in the source text. */
  readonly column: number;
  constructor(prefix: string, what: string, column: number) {
    super('E_BAD_INPUT', `${prefix}: ${what} at column ${column}`);
    this.name = 'FilterSyntaxError';
    this.column = column;
  }
}

/** 1-based code-point column of UTF-16 index `index` in `src`, so carets line up under astral characters too. */
export function columnOf(src: string, index: number): number {
  let col = 1;
  for (let i = 0; i < index && i < src.length; i++) {
    const c = src.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < index) {
      const d = src.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    col++;
  }
  return col;
}

/** Quote a piece of source for a one-line message: short, with control characters made visible. */
export function describe(text: string): string {
  const cps = Array.from(text);
  const short = cps.length > 24 ? cps.slice(0, 24).join('') + '…' : text;
  let out = '';
  for (const c of short) {
    const n = c.codePointAt(0)!;
    out +=
      n < 0x20 || n === 0x7f || (n >= 0x80 && n < 0xa0) || n === 0x2028 || n === 0x2029
        ? '\\u' + n.toString(16).padStart(4, '0')
        : c;
  }
  return `'${out}'`;
}
