// Benchmark 4: NET_DM packet mode in the qemu guest, against Debian's dwdump. Not implemented yet: see status below.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './lib/root.js';

export interface NetdmResult {
  status: 'measured' | 'not-measured';
  reason?: string;
  anchor?: string;
  method: string;
  dwdumpRate: number;
  oursRate: number;
  notes: string[];
}

/**
 * Reports why the guest measurement was not made. The measurement needs our NET_DM backend committed and built (a
 * step-rate search in packet mode: the highest paced rate at which every alert arrives and the kernel's tail-drop
 * statistic stays 0, for `dwdump -w` and for `dropwatch -b netdm` in the same boot).
 */
export function runNetdm(): NetdmResult {
  const backend = join(projectRoot, 'dist', 'src', 'netdm', 'backend.js');
  const reason = existsSync(backend)
    ? 'the NET_DM backend (src/netdm) was still being written by another engineer during this run, and the guest ' +
      'step-rate script for it and for dwdump is not written yet'
    : 'there is no NET_DM backend in this build (src/netdm has only the codec)';
  return { status: 'not-measured', reason, method: '', dwdumpRate: NaN, oursRate: NaN, notes: [] };
}
