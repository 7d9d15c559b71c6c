// The bpf source as the source table lists it: what it reads, needs and offers, and how to open it.
import type { DropSource, SourceOffer } from '../backend/types.js';

/**
 * Both alert modes; summaries say where (namespace, device, and the task for drops in its context), packets carry
 * their first bytes and the flow; call chains sampled in either. Hardware drops where the kernel has devlink (the
 * opened backend says).
 */
export const BPF_OFFER: SourceOffer = {
  modes: ['summary', 'packet'],
  settings: { trunc: true, queue: false, hw: true },
  fields: {
    summary: ['reason', 'device', 'netns', 'process', 'stack'],
    packet: ['reason', 'protocol', 'time', 'device', 'netns', 'payload', 'flow', 'process', 'stack'],
  },
};

export const BPF_SOURCE: DropSource = {
  name: 'bpf',
  label: 'bpf',
  reads: 'the skb:kfree_skb tracepoint with BPF',
  needs: 'BPF with BTF for skb:kfree_skb',
  missing: 'E_BPF_MISSING',
  offers: BPF_OFFER,
  open: async (options) => {
    const { openBpfBackend } = await import('./backend.js');
    return openBpfBackend({ onWarning: options.notice });
  },
};
