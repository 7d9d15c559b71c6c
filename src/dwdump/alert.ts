// Pure: a drop another source captured (bpf) as the PACKET_ALERT drop_monitor would have sent for it, with the
// kernel's `%pS` text of its PC, so dwdump's pcap reads the same whichever source filled it.
import type { PacketDrop } from '../backend/types.js';
import { encodePacketAlert } from '../netdm/codec.js';
import type { KallsymsIndex } from '../symbols/kallsyms.js';

/** drop_monitor formats SYMBOL into 40 bytes (NET_DM_MAX_SYMBOL_LEN): at most 39 characters and the NUL. */
export const NET_DM_SYMBOL_MAX = 39;

/** `%#lx`: 0x-prefixed hex, but a bare 0 for zero. */
const hex = (n: bigint): string => (n === 0n ? '0' : `0x${n.toString(16)}`);

/** Index of the last address at or below `addr` (the addresses ascend); -1 when none is. */
function atOrBelow(addresses: BigUint64Array, addr: bigint): number {
  let low = 0;
  let high = addresses.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (addresses[mid]! <= addr) low = mid + 1;
    else high = mid;
  }
  return low - 1;
}

/**
 * `%pS` of a kernel text address as sprint_symbol() writes it: `name+0xoff/0xsize`, then ` [module]`, where the size
 * runs to the next symbol's address; the bare address (`0x…`) when no symbol covers it or kallsyms is not readable;
 * cut to NET_DM's 39 characters.
 */
export function kernelSymbolText(index: KallsymsIndex | null, pc: bigint): string {
  const found = index === null || index.hidden ? null : index.resolve(pc);
  if (found === null) return hex(pc).slice(0, NET_DM_SYMBOL_MAX);
  const start = pc - found.offset;
  const i = atOrBelow(index!.addresses, start);
  const next = index!.addresses[i + 1];
  // The last symbol has no next one: the kernel's size is then its own bound, unknown here, so its offset past it.
  const size = next !== undefined ? next - start : found.offset + 1n;
  const text = `${found.symbol}+${hex(found.offset)}/${hex(size)}${found.module ? ` [${found.module}]` : ''}`;
  return text.slice(0, NET_DM_SYMBOL_MAX);
}

/**
 * The PACKET_ALERT for a captured software drop under the family id `familyId`: what drop_monitor puts in one (its
 * PC, reason, `%pS`, the input device's index, time, lengths, protocol and bytes), none of what it does not (the
 * device's name, namespace, task and decoded flow stay out).
 */
export function alertFromDrop(p: PacketDrop, familyId: number, symbols: KallsymsIndex | null): Uint8Array {
  const alert: PacketDrop = { origin: p.origin };
  if (p.origin === 'hardware') {
    Object.assign(alert, { trapGroup: p.trapGroup, trapName: p.trapName, inPort: p.inPort, cookie: p.cookie });
  } else {
    if (p.pc !== undefined) alert.pc = p.pc;
    if (p.reason !== undefined) alert.reason = p.reason;
    if (p.pc !== undefined) alert.symbol = kernelSymbolText(symbols, p.pc);
    alert.inPort = p.inPort?.ifindex ? { ifindex: p.inPort.ifindex } : {};
  }
  for (const key of ['timestampNs', 'origLen', 'protocol', 'payload'] as const)
    if (p[key] !== undefined) Object.assign(alert, { [key]: p[key] });
  for (const key of Object.keys(alert) as (keyof PacketDrop)[]) if (alert[key] === undefined) delete alert[key];
  return encodePacketAlert(alert, familyId);
}
