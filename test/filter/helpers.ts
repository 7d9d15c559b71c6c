// Test-only helpers: records without a flow, the reason table from a kfree_skb format file, and a reference evaluator of ftrace filter strings.

import { readFileSync } from 'node:fs';
import { fixturePath } from '../helpers/paths.js';

export const FIXTURE = fixturePath('filter', 'kfree_skb.format');

/** The flow fields of a record for a drop without a decoded flow (summary mode, tracefs). */
export const NO_FLOW = { l3: null, l4: null, src: null, dst: null, sport: null, dport: null } as const;

/** The workload fields of a record for a drop the source placed nowhere, as the record builders fill them. */
export const NO_WORKLOAD = { netns: null, container: null, containerName: null, pod: null, comm: null } as const;

/** The `{ N, "NAME" }` pairs of the format file's __print_symbolic(REC->reason, ...) table. */
export function reasonTable(formatText: string): Map<number, string> {
  const at = formatText.indexOf('__print_symbolic(REC->reason');
  if (at < 0) throw new Error('no reason table in format file');
  const table = new Map<number, string>();
  for (const m of formatText.slice(at).matchAll(/\{ (\d+), "(\w+)" \}/g)) table.set(Number(m[1]), m[2]!);
  return table;
}

export function fixtureReasons(): Map<number, string> {
  return reasonTable(readFileSync(FIXTURE, 'utf8'));
}

export interface KernelEvent {
  reason: number;
  protocol: number;
}

type KNode = { k: 'cmp'; field: 'reason' | 'protocol'; op: string; value: number } | { k: 'and' | 'or'; args: KNode[] };

/**
 * Parse the subset of ftrace filter syntax pushdown emits. Deliberately strict: mixing && and || at one level
 * without parentheses is rejected, since pushdown promises never to rely on the kernel's precedence.
 */
export function parseKernelFilter(src: string): KNode {
  const toks = src.match(/\(|\)|&&|\|\||==|!=|<=|>=|<|>|[a-z_]+|\d+|\S/g) ?? [];
  let i = 0;
  const expr = (): KNode => {
    const args = [term()];
    let kind: 'and' | 'or' | null = null;
    while (toks[i] === '&&' || toks[i] === '||') {
      const k = toks[i] === '&&' ? 'and' : 'or';
      if (kind !== null && kind !== k) throw new Error(`mixed && and || without parentheses in ${src}`);
      kind = k;
      i++;
      args.push(term());
    }
    return kind === null ? args[0]! : { k: kind, args };
  };
  const term = (): KNode => {
    if (toks[i] === '(') {
      i++;
      const e = expr();
      if (toks[i++] !== ')') throw new Error(`expected ) in ${src}`);
      return e;
    }
    const field = toks[i++];
    const op = toks[i++];
    const value = toks[i++];
    if (
      (field !== 'reason' && field !== 'protocol') ||
      !op ||
      !/^(==|!=|<=|>=|<|>)$/.test(op) ||
      !/^\d+$/.test(value ?? '')
    ) {
      throw new Error(`bad comparison at token ${i} in ${src}`);
    }
    return { k: 'cmp', field, op, value: Number(value) };
  };
  const e = expr();
  if (i !== toks.length) throw new Error(`trailing tokens in ${src}`);
  return e;
}

export function evalKernel(node: KNode, ev: KernelEvent): boolean {
  if (node.k !== 'cmp')
    return node.k === 'and' ? node.args.every((a) => evalKernel(a, ev)) : node.args.some((a) => evalKernel(a, ev));
  // The kernel truncates the constant to the field's size; pushdown must never emit one that needs it.
  const max = node.field === 'protocol' ? 0xffff : 0xffffffff;
  if (node.value > max) throw new Error(`constant ${node.value} does not fit ${node.field}`);
  const v = ev[node.field];
  switch (node.op) {
    case '==':
      return v === node.value;
    case '!=':
      return v !== node.value;
    case '<':
      return v < node.value;
    case '>':
      return v > node.value;
    case '<=':
      return v <= node.value;
    default:
      return v >= node.value;
  }
}
