// The keys of --by and `set by` (location, reason, netns, container, pod, dev, comm): their words, what each needs of a
// source, and their parsing; light, so the command line parses them without loading the grouping.
import type { DropField } from '../backend/types.js';
import { DropwatchError } from '../errors/index.js';

export const BY_KEYS = ['location', 'reason', 'netns', 'container', 'pod', 'dev', 'comm'] as const;
export type ByKey = (typeof BY_KEYS)[number];
export const DEFAULT_BY: readonly ByKey[] = ['location'];
/** Keys whose words come from a name resolver: the namespace's `ip netns` name or `host`, its container and pod. */
export const NAMED_KEYS: readonly ByKey[] = ['netns', 'container', 'pod'];

/**
 * What a source must report in summary mode for each key. A task is named only where a place says it (drops in a
 * task's context), so `comm` needs places, and shows `-` where a place names none.
 */
export const BY_NEEDS: Readonly<Record<ByKey, DropField | null>> = {
  location: null,
  reason: 'reason',
  netns: 'netns',
  container: 'netns',
  pod: 'netns',
  dev: 'device',
  comm: 'netns',
};

/** The keys a source whose summaries carry `fields` cannot group by, each with what it lacks. */
export const unknownKeys = (keys: readonly ByKey[], fields: readonly DropField[]): [ByKey, DropField][] =>
  keys.flatMap((k): [ByKey, DropField][] => {
    const need = BY_NEEDS[k];
    return need === null || fields.includes(need) ? [] : [[k, need]];
  });

/** `netns,dev` → ['netns', 'dev'], each key once, in the order given; E_BAD_INPUT names a key it does not know. */
export function parseBy(text: string): ByKey[] {
  const keys: ByKey[] = [];
  const all = `(keys: ${BY_KEYS.join(', ')})`;
  for (const raw of text.split(',')) {
    const word = raw.trim();
    if (word === '') throw new DropwatchError('E_BAD_INPUT', `no key ${all}`);
    const key = BY_KEYS.find((k) => k === word);
    if (key === undefined) throw new DropwatchError('E_BAD_INPUT', `unknown key ${shown(word)} ${all}`);
    if (!keys.includes(key)) keys.push(key);
  }
  return keys;
}

/** A key as typed, safe on one line: quoted, control characters escaped, cut when long. */
const shown = (word: string): string =>
  /^[\w.-]{1,40}$/.test(word) ? `'${word}'` : JSON.stringify(word.slice(0, 40)).replace(/[\x7f-\x9f]/g, '?');

/** Whether the keys make dropwatch's own line: by location (whose line carries the reason already). */
export const isDefaultBy = (keys: readonly ByKey[]): boolean =>
  keys.includes('location') && keys.every((k) => k === 'location' || k === 'reason');
