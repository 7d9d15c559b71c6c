// nlctrl, generic netlink's own family: resolves a family name to its id, version and multicast groups.

import { DropwatchError, KernelError, strerror } from '../errors/index.js';
import {
  attrMap,
  attrNested,
  attrString,
  attrU16,
  attrU32,
  decodeAttrs,
  concat,
  decodeGenl,
  encodeGenl,
  genlBody,
  nlaBinary,
  nlaString,
  nlaU16,
  nlaU32,
  type GenlMessage,
  type NlAttr,
  type NlMessage,
} from './codec.js';
import type { RequestOptions } from './socket.js';
import type { NetlinkChannel } from './transport.js';

export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_NEWFAMILY = 1;
export const CTRL_CMD_GETFAMILY = 3;
/** nlctrl's version as libnl's genl_ctrl_resolve() sends it. */
export const CTRL_VERSION = 1;
/** The version nlctrl puts in its own messages (its family's version). */
export const CTRL_FAMILY_VERSION = 2;

export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const CTRL_ATTR_VERSION = 3;
export const CTRL_ATTR_HDRSIZE = 4;
export const CTRL_ATTR_MAXATTR = 5;
export const CTRL_ATTR_OPS = 6;
export const CTRL_ATTR_MCAST_GROUPS = 7;
export const CTRL_ATTR_OP_ID = 1;
export const CTRL_ATTR_OP_FLAGS = 2;
export const CTRL_ATTR_MCAST_GRP_NAME = 1;
export const CTRL_ATTR_MCAST_GRP_ID = 2;

const ENOENT = 2;

export interface GenlFamily {
  name: string;
  id: number;
  version: number;
  hdrsize: number;
  maxattr: number;
  /** Multicast group name → group id (for addMembership). */
  mcastGroups: Map<string, number>;
  /** Command id → op flags (GENL_ADMIN_PERM 0x01, ...). */
  ops: Map<number, number>;
  /** The whole CTRL_CMD_NEWFAMILY reply message as received (dwdump's first pcap record). */
  raw: Uint8Array;
}

/** The family is not registered (nlctrl answered ENOENT); the NET_DM layer turns this into E_NETDM_MISSING. */
export class GenlFamilyNotFoundError extends KernelError {
  readonly family: string;
  constructor(family: string, extack?: string) {
    super(ENOENT, `generic netlink family ${family} not found: ${strerror(ENOENT)}`, extack);
    this.name = 'GenlFamilyNotFoundError';
    this.family = family;
  }
}

function requireAttr(m: Map<number, NlAttr>, type: number, what: string): NlAttr {
  const a = m.get(type);
  if (!a) throw new DropwatchError('E_DECODE', `nlctrl: reply without ${what}`);
  return a;
}

/** Decodes one CTRL_CMD_NEWFAMILY message (a GETFAMILY reply or one entry of its dump). */
export function decodeFamily(msg: NlMessage): GenlFamily {
  const g = decodeGenl(msg);
  if (g.cmd !== CTRL_CMD_NEWFAMILY) throw new DropwatchError('E_DECODE', `nlctrl: unexpected command ${g.cmd}`);
  const m = attrMap(g.attrs);
  const mcastGroups = new Map<string, number>();
  const groups = m.get(CTRL_ATTR_MCAST_GROUPS);
  if (groups) {
    for (const entry of attrNested(groups)) {
      const e = attrMap(entry.data);
      const name = e.get(CTRL_ATTR_MCAST_GRP_NAME);
      const id = e.get(CTRL_ATTR_MCAST_GRP_ID);
      if (name && id) mcastGroups.set(attrString(name), attrU32(id));
    }
  }
  const ops = new Map<number, number>();
  const opsAttr = m.get(CTRL_ATTR_OPS);
  if (opsAttr) {
    for (const entry of decodeAttrs(opsAttr.data)) {
      const e = attrMap(entry.data);
      const id = e.get(CTRL_ATTR_OP_ID);
      const flags = e.get(CTRL_ATTR_OP_FLAGS);
      if (id) ops.set(attrU32(id), flags ? attrU32(flags) : 0);
    }
  }
  const opt = (type: number): number => {
    const a = m.get(type);
    return a ? attrU32(a) : 0;
  };
  return {
    name: attrString(requireAttr(m, CTRL_ATTR_FAMILY_NAME, 'CTRL_ATTR_FAMILY_NAME')),
    id: attrU16(requireAttr(m, CTRL_ATTR_FAMILY_ID, 'CTRL_ATTR_FAMILY_ID')),
    version: opt(CTRL_ATTR_VERSION),
    hdrsize: opt(CTRL_ATTR_HDRSIZE),
    maxattr: opt(CTRL_ATTR_MAXATTR),
    mcastGroups,
    ops,
    raw: msg.raw,
  };
}

/** A family as NEWFAMILY describes it, without the bytes it came in. */
export type GenlFamilySpec = Omit<GenlFamily, 'raw'>;

/**
 * The CTRL_CMD_NEWFAMILY message nlctrl would send for `f` (ctrl_fill_info: its attribute order, nests without
 * NLA_F_NESTED), for a capture that must map a family id to its name; the inverse of decodeFamily.
 */
export function encodeFamily(f: GenlFamilySpec, header: { seq?: number; pid?: number } = {}): Uint8Array {
  const entry = (i: number, attrs: Uint8Array[]): Uint8Array => nlaBinary(i + 1, concat(attrs));
  const ops = [...f.ops].map(([id, flags], i) =>
    entry(i, [nlaU32(CTRL_ATTR_OP_ID, id), nlaU32(CTRL_ATTR_OP_FLAGS, flags)]),
  );
  const groups = [...f.mcastGroups].map(([name, id], i) =>
    entry(i, [nlaU32(CTRL_ATTR_MCAST_GRP_ID, id), nlaString(CTRL_ATTR_MCAST_GRP_NAME, name)]),
  );
  const attrs = [
    nlaString(CTRL_ATTR_FAMILY_NAME, f.name),
    nlaU16(CTRL_ATTR_FAMILY_ID, f.id),
    nlaU32(CTRL_ATTR_VERSION, f.version),
    nlaU32(CTRL_ATTR_HDRSIZE, f.hdrsize),
    nlaU32(CTRL_ATTR_MAXATTR, f.maxattr),
  ];
  if (ops.length > 0) attrs.push(nlaBinary(CTRL_ATTR_OPS, concat(ops)));
  if (groups.length > 0) attrs.push(nlaBinary(CTRL_ATTR_MCAST_GROUPS, concat(groups)));
  return encodeGenl(
    { family: GENL_ID_CTRL, cmd: CTRL_CMD_NEWFAMILY, version: CTRL_FAMILY_VERSION, seq: header.seq, pid: header.pid },
    attrs,
  );
}

export function getFamilyRequestBody(name: string): Uint8Array {
  return genlBody(CTRL_CMD_GETFAMILY, CTRL_VERSION, [nlaString(CTRL_ATTR_FAMILY_NAME, name)]);
}

/**
 * CTRL_CMD_GETFAMILY by name on a NETLINK_GENERIC socket. Rejects with GenlFamilyNotFoundError when the family is
 * not registered (resolving a modular family such as NET_DM may autoload it first, inside the send).
 */
export async function getFamily(sock: Pick<NetlinkChannel, 'request'>, name: string): Promise<GenlFamily> {
  let replies: NlMessage[];
  try {
    replies = await sock.request(GENL_ID_CTRL, getFamilyRequestBody(name));
  } catch (err) {
    if (err instanceof KernelError && err.errno === ENOENT) throw new GenlFamilyNotFoundError(name, err.extack);
    throw err;
  }
  const reply = replies.find((r) => r.header.type === GENL_ID_CTRL);
  if (!reply) throw new DropwatchError('E_DECODE', `nlctrl: no reply for family ${name}`);
  return decodeFamily(reply);
}

/** Every registered family (a CTRL_CMD_GETFAMILY dump). */
export async function listFamilies(sock: Pick<NetlinkChannel, 'request'>): Promise<GenlFamily[]> {
  const replies = await sock.request(GENL_ID_CTRL, genlBody(CTRL_CMD_GETFAMILY, CTRL_VERSION), { dump: true });
  return replies.filter((r) => r.header.type === GENL_ID_CTRL).map(decodeFamily);
}

/**
 * One generic-netlink request: genlmsghdr(cmd, version) + attributes to `family`, resolving with the decoded replies
 * (empty for commands that only ACK). Errors as NetlinkSocket.request().
 */
export async function genlRequest(
  sock: Pick<NetlinkChannel, 'request'>,
  family: Pick<GenlFamily, 'id' | 'version' | 'hdrsize'>,
  cmd: number,
  attrs: readonly Uint8Array[] = [],
  options: RequestOptions = {},
): Promise<GenlMessage[]> {
  const replies = await sock.request(family.id, genlBody(cmd, family.version, attrs), options);
  return replies.filter((r) => r.header.type === family.id).map((r) => decodeGenl(r, family.hdrsize));
}
