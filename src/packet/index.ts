// The dropped packet's own headers: the flow decoder and the names it uses.

export { decodeFlow, MAX_VLANS } from './decode.js';
export { ipv4Text, ipv6Text } from './address.js';
export { arpOpName, icmpTypeName, ipProtocolName, tcpFlagsText } from './protocols.js';
export type { Flow, L3 } from './types.js';
