// The prompt's input: readline's lines and end of input, queued in order, overtaken by an exit request.
import type * as readline from 'node:readline';
import type { DropwatchError } from '../errors/index.js';

/** How the run ends when asked from outside: an exit code, or an error to report. */
export type Exit = { code: number; error?: DropwatchError };
export type Next = { kind: 'line'; line: string } | { kind: 'eof' } | ({ kind: 'exit' } & Exit);

/** Lines and end of input from readline, in order; an exit request overtakes whatever is queued. */
export function inputQueue(rl: readline.Interface, exited: Promise<Exit>): { next(): Promise<Next> } {
  const queued: Next[] = [];
  let waiter: ((next: Next) => void) | null = null;
  const push = (next: Next) => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(next);
    } else queued.push(next);
  };
  rl.on('line', (line) => push({ kind: 'line', line }));
  rl.on('close', () => push({ kind: 'eof' }));
  const exit = exited.then((how): Next => ({ kind: 'exit', ...how }));
  return {
    next: () => {
      const first = queued.shift();
      return Promise.race([exit, first ? Promise.resolve(first) : new Promise<Next>((resolve) => (waiter = resolve))]);
    },
  };
}
