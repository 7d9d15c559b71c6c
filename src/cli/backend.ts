// Picks and opens the drop source: NET_DM when the kernel has it, else the skb:kfree_skb tracepoint.
import type { Backend, BackendName } from '../backend/types.js';
import { DropwatchError } from '../errors/index.js';
// From the modules themselves, not the index.js files: those pull in codecs and decoders that only the reader worker
// or dwdump use, each module costing start-up time.
import { openNetdmBackend } from '../netdm/index.js';
import { TracefsBackend } from '../tracefs/index.js';

export interface OpenOptions {
  /** One-line notices for the user (stderr), e.g. which backend auto chose and why. */
  notice: (line: string) => void;
}

export async function openBackend(kind: BackendName | 'auto', options: OpenOptions): Promise<Backend> {
  switch (kind) {
    case 'tracefs':
      return TracefsBackend.open({ onWarning: options.notice });
    case 'netdm':
      return openNetdm(options);
    case 'auto':
      try {
        return await openNetdm(options);
      } catch (err) {
        if (!(err instanceof DropwatchError) || err.code !== 'E_NETDM_MISSING') throw err;
        options.notice('NET_DM is not available in this kernel (no drop_monitor); using the skb:kfree_skb tracepoint');
        return TracefsBackend.open({ onWarning: options.notice });
      }
  }
}

// Rejects with E_NETDM_MISSING ("Unable to find NET_DM family, dropwatch can't work") when the kernel lacks it.
function openNetdm(options: OpenOptions): Promise<Backend> {
  return openNetdmBackend({ onWarning: options.notice });
}
