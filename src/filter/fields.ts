// The filter's field names and their kinds: what every part of the filter language and the help text share.

/** Fields compared as text, and the only ones a regular expression applies to. */
export type TextField = 'reason' | 'symbol' | 'origin' | 'ifname' | 'container' | 'pod' | 'comm';
/** `l3`: one of a few names (ipv4, ipv6, arp). */
export type NameField = 'l3';
/** `l4` is a number too (an IP protocol), written back as its name. */
export type NumberField = 'protocol' | 'ifindex' | 'l4' | 'sport' | 'dport' | 'netns';
export type AddressField = 'src' | 'dst';
export type Field = TextField | NameField | NumberField | AddressField;

export const TEXT_FIELDS: readonly TextField[] = ['reason', 'symbol', 'origin', 'ifname', 'container', 'pod', 'comm'];
export const NUMBER_FIELDS: readonly NumberField[] = ['protocol', 'ifindex', 'l4', 'sport', 'dport', 'netns'];
export const ADDRESS_FIELDS: readonly AddressField[] = ['src', 'dst'];
/** The fields decoded from the packet's own headers (PacketDrop.flow). */
export const FLOW_FIELDS: readonly Field[] = ['l3', 'l4', 'src', 'dst', 'sport', 'dport'];
/** Where a drop happened and whose it was: the namespace's inode, its container and pod, the task (where known). */
export const WORKLOAD_FIELDS: readonly Field[] = ['netns', 'container', 'pod', 'comm'];
/** The fields whose value is a name resolved from the drop's network namespace. */
export const NAMED_FIELDS: readonly Field[] = ['container', 'pod'];
/** Other words for a field, resolved by the parser: `dev == eth0` is `ifname == eth0`. */
export const FIELD_ALIASES: ReadonlyMap<string, Field> = new Map([['dev', 'ifname']]);
export const FIELDS: readonly Field[] = [
  'reason',
  'symbol',
  'origin',
  'protocol',
  'ifindex',
  'ifname',
  'l3',
  'l4',
  'src',
  'dst',
  'sport',
  'dport',
  'netns',
  'container',
  'pod',
  'comm',
];
