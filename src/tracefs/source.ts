// The tracefs source as the source table lists it: what it reads, needs and offers, and how to open it.
import type { DropSource, SourceOffer } from '../backend/types.js';

/** Both alert modes, reasons and call chains, no packet-queue settings and no hardware drops. */
export const TRACEFS_OFFER: SourceOffer = {
  modes: ['summary', 'packet'],
  settings: { trunc: false, queue: false, hw: false },
  fields: { summary: ['reason', 'stack'], packet: ['reason', 'protocol', 'time', 'stack', 'process'] },
};

export const TRACEFS_SOURCE: DropSource = {
  name: 'tracefs',
  label: 'tracefs',
  reads: 'the skb:kfree_skb tracepoint',
  needs: 'the skb:kfree_skb tracepoint through tracefs',
  missing: 'E_TRACEFS_MISSING',
  offers: TRACEFS_OFFER,
  open: async (options) => {
    const { openTracefsBackend } = await import('./backend.js');
    return openTracefsBackend({ onWarning: options.notice });
  },
};
