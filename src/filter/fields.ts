// The filter's field names and their kinds: what every part of the filter language and the help text share.

/** Fields compared as text, and the only ones a regular expression applies to. */
export type TextField = 'reason' | 'symbol' | 'origin' | 'ifname';
/** `l3`: one of a few names (ipv4, ipv6, arp). */
export type NameField = 'l3';
/** `l4` is a number too (an IP protocol), written back as its name. */
export type NumberField = 'protocol' | 'ifindex' | 'netns' | 'l4' | 'sport' | 'dport';
export type AddressField = 'src' | 'dst';
export type Field = TextField | NameField | NumberField | AddressField;

export const TEXT_FIELDS: readonly TextField[] = ['reason', 'symbol', 'origin', 'ifname'];
export const NUMBER_FIELDS: readonly NumberField[] = ['protocol', 'ifindex', 'netns', 'l4', 'sport', 'dport'];
export const ADDRESS_FIELDS: readonly AddressField[] = ['src', 'dst'];
/** The fields decoded from the packet's own headers (PacketDrop.flow). */
export const FLOW_FIELDS: readonly Field[] = ['l3', 'l4', 'src', 'dst', 'sport', 'dport'];
export const FIELDS: readonly Field[] = [
  'reason',
  'symbol',
  'origin',
  'protocol',
  'ifindex',
  'ifname',
  'netns',
  'l3',
  'l4',
  'src',
  'dst',
  'sport',
  'dport',
];
