// Small statistics helpers: the machine is shared, so every figure is a median with its spread.

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(xs: readonly number[]): Spread {
  const finite = xs.filter((x) => Number.isFinite(x));
  return {
    median: median(finite),
    min: finite.length ? Math.min(...finite) : NaN,
    max: finite.length ? Math.max(...finite) : NaN,
    n: finite.length,
  };
}

/** `12.3 (10.1–14.0)` with the given number of decimals; `n/a` when nothing was measured. */
export function fmtSpread(s: Spread, decimals = 1, unit = ''): string {
  if (s.n === 0) return 'n/a';
  const f = (x: number) => x.toFixed(decimals);
  return s.n === 1 ? `${f(s.median)}${unit}` : `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)})`;
}

export function fmtInt(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a';
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
