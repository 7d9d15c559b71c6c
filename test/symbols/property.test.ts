// The kallsyms parser on damaged input: real lines (test/fixtures/symbols) with characters replaced, inserted and
// deleted, lines duplicated, shuffled and cut. It must never throw, and the index must resolve exactly as a plain
// reference reading of the same text does: a line is `<1-16 hex digits><whitespace><type><whitespace><name>` with an
// optional `[module]`, the first line at an address wins, and (as dropwatch) a zero base or a distance of 2^63-1 or
// more resolves to nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { KallsymsBuilder, parseKallsyms, type Resolved } from '../../src/symbols/index.js';
import { fixturePath } from '../helpers/paths.js';

const realLines = [
  ...readFileSync(fixturePath('symbols', 'kallsyms-cut.txt'), 'latin1').split('\n'),
  ...readFileSync(fixturePath('symbols', 'modules-synthetic.txt'), 'latin1').split('\n'),
].filter((l) => l !== '');

// The kernel's whitespace as the parser (and sscanf) sees it: ' ' and \t..\r. Not Unicode spaces.
const WS = '[\\t-\\r ]';
const LINE = new RegExp(`^([0-9a-fA-F]{1,16})${WS}`);

interface Ref {
  addr: bigint;
  symbol: string;
  module?: string;
}

/** The reference reading: one pass, no cleverness. */
function reference(text: string): { entries: Ref[]; hidden: boolean; parsed: number } {
  const byAddr = new Map<bigint, Ref>();
  let parsed = 0;
  let anyNonZero = false;
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const rest = line.slice(m[1]!.length);
    const tokens = rest.split(new RegExp(`${WS}+`)).filter((t) => t !== '');
    if (tokens.length < 2) continue;
    const symbol = tokens[1]!;
    // The module: after the name, whitespace, then `[` ... `]` on the same line.
    const afterName = rest.slice(rest.indexOf(symbol, rest.indexOf(tokens[0]!) + tokens[0]!.length) + symbol.length);
    const mod = new RegExp(`^${WS}*\\[([^\\]]*)\\]`).exec(afterName);
    parsed++;
    const addr = BigInt('0x' + m[1]!);
    if (addr !== 0n) anyNonZero = true;
    if (byAddr.has(addr)) continue;
    byAddr.set(addr, mod ? { addr, symbol, module: mod[1]!.trim() } : { addr, symbol });
  }
  const entries = [...byAddr.values()].sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  // Hidden (kptr_restrict) means lines were read and every address was zero; an empty text is not hidden.
  return { entries, hidden: parsed > 0 && !anyNonZero, parsed };
}

function refResolve(entries: readonly Ref[], pc: bigint): Resolved | null {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid]!.addr <= pc) lo = mid + 1;
    else hi = mid;
  }
  const base = entries[lo - 1];
  if (!base || base.addr === 0n) return null;
  const offset = pc - base.addr;
  if (offset >= 0x7fffffffffffffffn) return null;
  return base.module === undefined
    ? { symbol: base.symbol, offset }
    : { symbol: base.symbol, offset, module: base.module };
}

// Characters that matter to the grammar, plus ones that must not: Unicode spaces, NUL, non-ASCII, surrogates.
const char = fc.oneof(
  fc.constantFrom(' ', '\t', '\r', '\v', '\f', '\n', '[', ']', '0', 'f', 'F', 'x', 'T', 't', '_', '.'),
  fc.constantFrom('\0', '\u00a0', '\u2028', '\u3000', 'é', '\ud800', '\u{1f600}'),
  fc.string({ minLength: 1, maxLength: 1 }),
);
type Edit = { kind: 'replace' | 'insert' | 'delete'; line: number; at: number; text: string };
const edit: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom('replace', 'insert', 'delete'),
  line: fc.nat(),
  at: fc.nat({ max: 80 }),
  text: fc.oneof(char, fc.string({ unit: char, maxLength: 4 })),
});

function applyEdits(lines: string[], edits: readonly Edit[]): string[] {
  const out = [...lines];
  for (const e of edits) {
    if (out.length === 0) break;
    const i = e.line % out.length;
    const l = out[i]!;
    const at = Math.min(e.at, l.length);
    if (e.kind === 'replace') out[i] = l.slice(0, at) + e.text + l.slice(at + e.text.length);
    else if (e.kind === 'insert') out[i] = l.slice(0, at) + e.text + l.slice(at);
    else out[i] = l.slice(0, at) + l.slice(at + Math.max(1, e.text.length));
  }
  return out;
}

/** Probes: every address the reference knows, either side of it, and a few random ones. */
function probes(entries: readonly Ref[], extra: readonly bigint[]): bigint[] {
  const out = new Set<bigint>([0n, 1n, 0xffffffffffffffffn, 0x7fffffffffffffffn, 0x8000000000000000n, ...extra]);
  for (const { addr } of entries) for (const d of [-1n, 0n, 1n, 0x40n]) if (addr + d >= 0n) out.add(addr + d);
  return [...out].filter((pc) => pc <= 0xffffffffffffffffn);
}

const sample = fc
  .array(fc.nat({ max: realLines.length - 1 }), { minLength: 1, maxLength: 40 })
  .map((ix) => ix.map((i) => realLines[i]!));

test('mutated real lines: never throws, and resolves exactly as the reference reading', () => {
  fc.assert(
    fc.property(
      sample,
      fc.array(edit, { maxLength: 12 }),
      fc.boolean(),
      fc.array(fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }), { maxLength: 4 }),
      (lines, edits, finalNewline, extra) => {
        const text = applyEdits(lines, edits).join('\n') + (finalNewline ? '\n' : '');
        const index = parseKallsyms(text);
        const ref = reference(text);
        assert.equal(index.lineCount, ref.parsed, 'lines parsed');
        assert.equal(index.hidden, ref.hidden, 'hidden');
        assert.deepEqual(
          [...index.addresses],
          ref.entries.map((e) => e.addr),
          'addresses',
        );
        for (const pc of probes(ref.entries, extra)) {
          assert.deepEqual(index.resolve(pc), refResolve(ref.entries, pc), `pc 0x${pc.toString(16)} in\n${text}`);
        }
      },
    ),
    { numRuns: 1500 },
  );
});

test('slices: parsing the same damaged text in slices of any size gives the same index', () => {
  fc.assert(
    fc.property(sample, fc.array(edit, { maxLength: 8 }), fc.integer({ min: 1, max: 7 }), (lines, edits, slice) => {
      const text = applyEdits(lines, edits).join('\n');
      const whole = parseKallsyms(text);
      const b = new KallsymsBuilder();
      let pos = 0;
      for (let turns = 0; pos < text.length; turns++) {
        const next = b.addLines(text, pos, slice);
        assert.ok(next > pos || next >= text.length, 'addLines makes progress');
        pos = next;
      }
      const sliced = b.build();
      assert.deepEqual([...sliced.addresses], [...whole.addresses]);
      for (const pc of whole.addresses) assert.deepEqual(sliced.resolve(pc), whole.resolve(pc));
    }),
    { numRuns: 300 },
  );
});

test('arbitrary text (not lines from kallsyms at all) never throws', () => {
  fc.assert(
    fc.property(fc.string({ unit: char, maxLength: 400 }), (text) => {
      const index = parseKallsyms(text);
      for (const pc of index.addresses) index.resolve(pc);
    }),
    { numRuns: 500 },
  );
});
