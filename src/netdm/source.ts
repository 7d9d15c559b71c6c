// The NET_DM source as the source table lists it: what it reads, needs and offers, and how to open it.
import type { DropSource, SourceOffer } from '../backend/types.js';

/** Both alert modes and every packet-queue setting; hardware summaries name their trap, packet alerts carry the packet. */
export const NETDM_OFFER: SourceOffer = {
  modes: ['summary', 'packet'],
  settings: { trunc: true, queue: true, hw: true },
  fields: {
    summary: ['trap'],
    packet: ['reason', 'symbol', 'protocol', 'time', 'device', 'payload', 'trap', 'flow'],
  },
};

export const NETDM_SOURCE: DropSource = {
  name: 'netdm',
  label: 'NET_DM',
  reads: 'NET_DM netlink',
  needs: 'drop_monitor (NET_DM)',
  missing: 'E_NETDM_MISSING',
  offers: NETDM_OFFER,
  open: async (options) => {
    const { openNetdmBackend } = await import('./backend.js');
    return openNetdmBackend({ onWarning: options.notice });
  },
};
