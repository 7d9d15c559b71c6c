// The one place that knows the drop sources: each states what it needs; `auto` opens the first the machine allows.
import type { Backend, BackendName } from '../backend/types.js';
import { DropwatchError } from '../errors/index.js';
import { openNetdmBackend } from '../netdm/index.js';
import { TracefsBackend } from '../tracefs/index.js';

export interface OpenOptions {
  /** One-line notices for the user (stderr), e.g. which backend auto chose and why. */
  notice: (line: string) => void;
}

interface DropSource {
  name: BackendName;
  /** What the machine must have, said when `auto` passes over it. */
  needs: string;
  /** The error code that means "this machine lacks it" (anything else, e.g. no privilege, ends the run). */
  missing: string;
  open(options: OpenOptions): Promise<Backend>;
}

/** In `auto`'s order of preference: NET_DM is what dropwatch speaks and the only one with payloads and hardware drops. */
const SOURCES: readonly DropSource[] = [
  {
    name: 'netdm',
    needs: 'drop_monitor (NET_DM)',
    missing: 'E_NETDM_MISSING',
    open: (options) => openNetdmBackend({ onWarning: options.notice }),
  },
  {
    name: 'tracefs',
    needs: 'the skb:kfree_skb tracepoint through tracefs',
    missing: 'E_TRACEFS_MISSING',
    open: (options) => TracefsBackend.open({ onWarning: options.notice }),
  },
];

export async function openBackend(kind: BackendName | 'auto', options: OpenOptions): Promise<Backend> {
  if (kind !== 'auto') return sourceNamed(kind).open(options);
  // Every source but the last gives way to the next when the machine lacks it; the last one's error is the answer.
  for (const [i, source] of SOURCES.slice(0, -1).entries()) {
    try {
      return await source.open(options);
    } catch (err) {
      if (!(err instanceof DropwatchError) || err.code !== source.missing) throw err;
      options.notice(`this kernel has no ${source.needs}; using ${SOURCES[i + 1]!.needs}`);
    }
  }
  return SOURCES.at(-1)!.open(options);
}

function sourceNamed(name: BackendName): DropSource {
  const source = SOURCES.find((s) => s.name === name);
  if (!source) throw new DropwatchError('E_USAGE', `unknown backend ${name}`);
  return source;
}
