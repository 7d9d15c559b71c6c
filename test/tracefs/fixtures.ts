// The ring-buffer captures in test/fixtures/tracefs (made by capture.mjs on a real kernel), loaded for the pure tests.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  kfreeSkbLayout,
  parseCpuStats,
  parseEventFormat,
  parseHeaderEvent,
  parseHeaderPage,
  type CpuStats,
  type KfreeSkbLayout,
} from '../../src/tracefs/format.js';
import type { PageLayouts } from '../../src/tracefs/page.js';
import { fixturePath } from '../helpers/paths.js';

export const FIXTURES = fixturePath('tracefs');

export interface Capture {
  dir: string;
  layouts: PageLayouts;
  skb: KfreeSkbLayout;
  pageSize: number;
}

export function loadCapture(name: string): Capture {
  const dir = join(FIXTURES, name);
  const page = parseHeaderPage(readFileSync(join(dir, 'header_page'), 'utf8'));
  const event = parseHeaderEvent(readFileSync(join(dir, 'header_event'), 'utf8'));
  const skb = kfreeSkbLayout(parseEventFormat(readFileSync(join(dir, 'format'), 'utf8')));
  return { dir, layouts: { page, event }, skb, pageSize: page.dataOffset + page.dataSize };
}

/** The CPU numbers the capture has pages for (cpuN.raw, possibly empty), ascending. */
export function captureCpus(c: Capture): number[] {
  return readdirSync(c.dir)
    .map((f) => /^cpu(\d+)\.raw$/.exec(f)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** The pages one CPU's trace_pipe_raw gave, in read order (each read returned one page). */
export function capturePages(c: Capture, cpu: number): Uint8Array[] {
  const raw = readFileSync(join(c.dir, `cpu${cpu}.raw`));
  const pages: Uint8Array[] = [];
  for (let off = 0; off < raw.length; off += c.pageSize)
    pages.push(new Uint8Array(raw.subarray(off, off + c.pageSize)));
  return pages;
}

/** per_cpu/cpuN/stats as captured: after the drops, before any read (so `read events` is 0). */
export function captureStats(c: Capture, cpu: number): CpuStats {
  return parseCpuStats(readFileSync(join(c.dir, `cpu${cpu}.stats`), 'utf8'));
}

/** One kfree_skb line of the kernel's text rendering of the same buffer (trace.txt). */
export interface TextRecord {
  cpu: number;
  usecs: bigint;
  protocol: number;
  symbol: string;
  offset: bigint;
  reason: string;
}

export function textRecords(c: Capture): TextRecord[] {
  const re =
    /\[(\d+)\]\s+\S+\s+(\d+)\.(\d{6}): kfree_skb: .*protocol=(\d+) location=([^+\s]+)\+0x([0-9a-f]+)\/0x[0-9a-f]+ reason: (\S+)/;
  const out: TextRecord[] = [];
  for (const line of readFileSync(join(c.dir, 'trace.txt'), 'utf8').split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    out.push({
      cpu: Number(m[1]),
      usecs: BigInt(m[2]!) * 1_000_000n + BigInt(m[3]!),
      protocol: Number(m[4]),
      symbol: m[5]!,
      offset: BigInt('0x' + m[6]!),
      reason: m[7]!,
    });
  }
  return out;
}

/** Symbol name → addresses, from the /proc/kallsyms lines the capture saved. */
export function kallsyms(c: Capture): Map<string, bigint[]> {
  const map = new Map<string, bigint[]>();
  for (const line of readFileSync(join(c.dir, 'kallsyms.txt'), 'utf8').split('\n')) {
    const [addr, , name] = line.split(/\s+/);
    if (!addr || !name) continue;
    map.set(name, [...(map.get(name) ?? []), BigInt('0x' + addr)]);
  }
  return map;
}
