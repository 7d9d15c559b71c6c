// Pure NET_DM codec: request bodies for drop_monitor's generic netlink commands and decoders for what it sends back.
// Layout follows the kernel's include/uapi/linux/net_dropmon.h and net/core/drop_monitor.c (host byte order throughout).
// Decoders return a value or throw DropwatchError('E_DECODE'); they loop only over netlink attributes, which the
// netlink codec always advances, so none can hang.

import { endianness } from 'node:os';
import type { BackendEvent, MonitorConfig, PacketDrop, StartOptions, Stats, SummaryEntry } from '../backend/types.js';
import { DropwatchError } from '../errors/index.js';
import {
  AttrIndex,
  attrMap,
  attrNested,
  attrString,
  attrU32,
  attrU64,
  attrU8,
  decodeAttrs,
  decodeGenl,
  encodeGenl,
  genlBody,
  GENL_HDRLEN,
  nlaBinary,
  nlaFlag,
  nlaNested,
  nlaString,
  nlaU16,
  nlaU32,
  nlaU64,
  nlaU8,
  type NlAttr,
  type NlMessage,
} from '../netlink/codec.js';
import type { GenlFamilySpec } from '../netlink/nlctrl.js';

const LE = endianness() === 'LE';

export const NET_DM_FAMILY_NAME = 'NET_DM';
export const NET_DM_GROUP_NAME = 'events';
/** The version dropwatch 1.5.4 puts in its requests (the kernel ignores it; the family itself reports 2). */
export const NET_DM_REQUEST_VERSION = 1;
/** The version drop_monitor puts in what it sends (its family's version). */
export const NET_DM_FAMILY_VERSION = 2;

export const NET_DM_CMD_UNSPEC = 0;
export const NET_DM_CMD_ALERT = 1;
export const NET_DM_CMD_CONFIG = 2;
export const NET_DM_CMD_START = 3;
export const NET_DM_CMD_STOP = 4;
export const NET_DM_CMD_PACKET_ALERT = 5;
export const NET_DM_CMD_CONFIG_GET = 6;
export const NET_DM_CMD_CONFIG_NEW = 7;
export const NET_DM_CMD_STATS_GET = 8;
export const NET_DM_CMD_STATS_NEW = 9;

export const NET_DM_ATTR_UNSPEC = 0;
export const NET_DM_ATTR_ALERT_MODE = 1;
export const NET_DM_ATTR_PC = 2;
export const NET_DM_ATTR_SYMBOL = 3;
export const NET_DM_ATTR_IN_PORT = 4;
export const NET_DM_ATTR_TIMESTAMP = 5;
export const NET_DM_ATTR_PROTO = 6;
export const NET_DM_ATTR_PAYLOAD = 7;
export const NET_DM_ATTR_PAD = 8;
export const NET_DM_ATTR_TRUNC_LEN = 9;
export const NET_DM_ATTR_ORIG_LEN = 10;
export const NET_DM_ATTR_QUEUE_LEN = 11;
export const NET_DM_ATTR_STATS = 12;
export const NET_DM_ATTR_HW_STATS = 13;
export const NET_DM_ATTR_ORIGIN = 14;
export const NET_DM_ATTR_HW_TRAP_GROUP_NAME = 15;
export const NET_DM_ATTR_HW_TRAP_NAME = 16;
export const NET_DM_ATTR_HW_ENTRIES = 17;
export const NET_DM_ATTR_HW_ENTRY = 18;
export const NET_DM_ATTR_HW_TRAP_COUNT = 19;
export const NET_DM_ATTR_SW_DROPS = 20;
export const NET_DM_ATTR_HW_DROPS = 21;
export const NET_DM_ATTR_FLOW_ACTION_COOKIE = 22;
export const NET_DM_ATTR_REASON = 23;

/** Inside NET_DM_ATTR_IN_PORT. */
export const NET_DM_ATTR_PORT_NETDEV_IFINDEX = 0;
export const NET_DM_ATTR_PORT_NETDEV_NAME = 1;
/** Inside NET_DM_ATTR_STATS / NET_DM_ATTR_HW_STATS. */
export const NET_DM_ATTR_STATS_DROPPED = 0;

export const NET_DM_ORIGIN_SW = 0;
export const NET_DM_ORIGIN_HW = 1;
export const NET_DM_ALERT_MODE_SUMMARY = 0;
export const NET_DM_ALERT_MODE_PACKET = 1;

/** struct net_dm_drop_point: u8 pc[8] then u32 count. */
export const DROP_POINT_SIZE = 12;

function decodeError(message: string): DropwatchError {
  return new DropwatchError('E_DECODE', `NET_DM: ${message}`);
}

function asDecodeError(what: string, err: unknown): DropwatchError {
  if (err instanceof DropwatchError && err.code === 'E_DECODE') return err;
  return new DropwatchError('E_DECODE', `NET_DM: ${what}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

// Every decoder runs through this, so a malformed message can only ever surface as E_DECODE.
function guarded<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw asDecodeError(what, err);
  }
}

// ---------- requests (genl bodies for NetlinkSocket.request) ----------

/** CONFIG with only the attributes being changed (dropwatch sends just ALERT_MODE for `set alertmode`). */
export function encodeConfig(change: Partial<MonitorConfig>, version = NET_DM_REQUEST_VERSION): Uint8Array {
  const attrs: Uint8Array[] = [];
  if (change.alertMode !== undefined)
    attrs.push(
      nlaU8(
        NET_DM_ATTR_ALERT_MODE,
        change.alertMode === 'packet' ? NET_DM_ALERT_MODE_PACKET : NET_DM_ALERT_MODE_SUMMARY,
      ),
    );
  if (change.truncLen !== undefined) attrs.push(nlaU32(NET_DM_ATTR_TRUNC_LEN, checkU32(change.truncLen, 'truncLen')));
  if (change.queueLen !== undefined) attrs.push(nlaU32(NET_DM_ATTR_QUEUE_LEN, checkU32(change.queueLen, 'queueLen')));
  return genlBody(NET_DM_CMD_CONFIG, version, attrs);
}

function checkU32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new DropwatchError('E_BAD_INPUT', `${what} must be an integer from 0 to 4294967295, got ${v}`);
  return v;
}

// Neither flag is what dropwatch sends by default; the kernel then monitors software drops only.
function traceFlags(options: Partial<StartOptions>): Uint8Array[] {
  const attrs: Uint8Array[] = [];
  if (options.sw) attrs.push(nlaFlag(NET_DM_ATTR_SW_DROPS));
  if (options.hw) attrs.push(nlaFlag(NET_DM_ATTR_HW_DROPS));
  return attrs;
}

export const encodeStart = (options: Partial<StartOptions> = {}, version = NET_DM_REQUEST_VERSION): Uint8Array =>
  genlBody(NET_DM_CMD_START, version, traceFlags(options));
export const encodeStop = (options: Partial<StartOptions> = {}, version = NET_DM_REQUEST_VERSION): Uint8Array =>
  genlBody(NET_DM_CMD_STOP, version, traceFlags(options));
export const encodeConfigGet = (version = NET_DM_REQUEST_VERSION): Uint8Array =>
  genlBody(NET_DM_CMD_CONFIG_GET, version);
export const encodeStatsGet = (version = NET_DM_REQUEST_VERSION): Uint8Array => genlBody(NET_DM_CMD_STATS_GET, version);

// ---------- decoders ----------

/** The genl command of a NET_DM message (E_DECODE when it has no genlmsghdr). */
export function netdmCommand(msg: NlMessage): number {
  if (msg.payload.length < GENL_HDRLEN) throw new DropwatchError('E_DECODE', 'netlink: short genlmsghdr');
  return msg.payload[0]!;
}

function attrsOf(msg: NlMessage, cmd: number, name: string): Uint8Array {
  const g = decodeGenl(msg);
  if (g.cmd !== cmd) throw decodeError(`expected ${name} (command ${cmd}), got command ${g.cmd}`);
  return g.attrs;
}

/**
 * A summary ALERT: the NLA_UNSPEC header (u32 entries, then 12-byte points) and, for hardware drops, HW_ENTRIES.
 * Software points keep their PC (0n is NET_DM's NIC rx_dropped heuristic); the kernel sends no reason here.
 */
export function decodeSummaryAlert(msg: NlMessage): SummaryEntry[] {
  return guarded('ALERT', () => {
    const attrs = decodeAttrs(attrsOf(msg, NET_DM_CMD_ALERT, 'ALERT'));
    const out: SummaryEntry[] = [];
    let sawHeader = false;
    for (const a of attrs) {
      if (a.type === NET_DM_ATTR_UNSPEC) {
        sawHeader = true;
        out.push(...decodeDropPoints(a.data));
      } else if (a.type === NET_DM_ATTR_HW_ENTRIES) {
        for (const entry of attrNested(a)) {
          if (entry.type !== NET_DM_ATTR_HW_ENTRY) continue;
          const m = attrMap(entry.data);
          const name = m.get(NET_DM_ATTR_HW_TRAP_NAME);
          const count = m.get(NET_DM_ATTR_HW_TRAP_COUNT);
          if (!name || !count) throw decodeError('HW_ENTRY without trap name or count');
          out.push({ origin: 'hardware', pc: 0n, trap: attrString(name), reason: null, count: attrU32(count) });
        }
      }
    }
    if (!sawHeader) throw decodeError('ALERT without its drop-point header');
    return out;
  });
}

function decodeDropPoints(data: Uint8Array): SummaryEntry[] {
  if (data.length < 4) throw decodeError(`ALERT header of ${data.length} bytes`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const entries = v.getUint32(0, LE);
  if (entries > Math.floor((data.length - 4) / DROP_POINT_SIZE))
    throw decodeError(`ALERT claims ${entries} drop points in ${data.length - 4} bytes`);
  const out: SummaryEntry[] = [];
  for (let i = 0; i < entries; i++) {
    const off = 4 + i * DROP_POINT_SIZE;
    out.push({
      origin: 'software',
      pc: v.getBigUint64(off, LE),
      reason: null,
      count: v.getUint32(off + 8, LE),
    });
  }
  return out;
}

// Kernels before hardware monitoring (5.4) sent no ORIGIN: callers take that as software.
function originOf(o: number): 'software' | 'hardware' {
  if (o === NET_DM_ORIGIN_SW) return 'software';
  if (o === NET_DM_ORIGIN_HW) return 'hardware';
  throw decodeError(`unknown origin ${o}`);
}

// Indexes reused by every PACKET_ALERT: decoding is synchronous, so no two decodes ever share them at once.
const packetAttrs = new AttrIndex(NET_DM_ATTR_REASON);
const portAttrs = new AttrIndex(NET_DM_ATTR_PORT_NETDEV_NAME);

/** A PACKET_ALERT, software or hardware; fields the kernel left out stay undefined. One per dropped packet: no object per attribute. */
export function decodePacketAlert(msg: NlMessage): PacketDrop {
  try {
    const cmd = netdmCommand(msg);
    if (cmd !== NET_DM_CMD_PACKET_ALERT)
      throw decodeError(`expected PACKET_ALERT (command ${NET_DM_CMD_PACKET_ALERT}), got command ${cmd}`);
    const m = packetAttrs.scan(msg.payload, GENL_HDRLEN);
    const p: PacketDrop = { origin: m.has(NET_DM_ATTR_ORIGIN) ? originOf(m.u16(NET_DM_ATTR_ORIGIN)) : 'software' };
    if (m.has(NET_DM_ATTR_PC)) p.pc = m.u64(NET_DM_ATTR_PC);
    if (m.has(NET_DM_ATTR_SYMBOL)) p.symbol = m.string(NET_DM_ATTR_SYMBOL);
    if (m.has(NET_DM_ATTR_HW_TRAP_GROUP_NAME)) p.trapGroup = m.string(NET_DM_ATTR_HW_TRAP_GROUP_NAME);
    if (m.has(NET_DM_ATTR_HW_TRAP_NAME)) p.trapName = m.string(NET_DM_ATTR_HW_TRAP_NAME);
    if (m.has(NET_DM_ATTR_IN_PORT)) {
      const port = portAttrs.scan(m.bytes(NET_DM_ATTR_IN_PORT));
      const inPort: { ifindex?: number; name?: string } = {};
      if (port.has(NET_DM_ATTR_PORT_NETDEV_IFINDEX)) inPort.ifindex = port.u32(NET_DM_ATTR_PORT_NETDEV_IFINDEX);
      if (port.has(NET_DM_ATTR_PORT_NETDEV_NAME)) inPort.name = port.string(NET_DM_ATTR_PORT_NETDEV_NAME);
      p.inPort = inPort;
    }
    // Copies: the datagram buffer must not be kept alive by one field of one event.
    if (m.has(NET_DM_ATTR_FLOW_ACTION_COOKIE)) p.cookie = m.bytes(NET_DM_ATTR_FLOW_ACTION_COOKIE).slice();
    if (m.has(NET_DM_ATTR_TIMESTAMP)) p.timestampNs = m.u64(NET_DM_ATTR_TIMESTAMP);
    if (m.has(NET_DM_ATTR_PROTO)) p.protocol = m.u16(NET_DM_ATTR_PROTO);
    if (m.has(NET_DM_ATTR_PAYLOAD)) p.payload = m.bytes(NET_DM_ATTR_PAYLOAD).slice();
    if (m.has(NET_DM_ATTR_ORIG_LEN)) p.origLen = m.u32(NET_DM_ATTR_ORIG_LEN);
    if (m.has(NET_DM_ATTR_REASON)) p.reason = m.string(NET_DM_ATTR_REASON);
    return p;
  } catch (err) {
    throw asDecodeError('PACKET_ALERT', err);
  }
}

/** CONFIG_NEW, the answer to CONFIG_GET. */
export function decodeConfigNew(msg: NlMessage): MonitorConfig {
  return guarded('CONFIG_NEW', () => {
    const m = attrMap(attrsOf(msg, NET_DM_CMD_CONFIG_NEW, 'CONFIG_NEW'));
    const mode = m.get(NET_DM_ATTR_ALERT_MODE);
    const trunc = m.get(NET_DM_ATTR_TRUNC_LEN);
    const queue = m.get(NET_DM_ATTR_QUEUE_LEN);
    if (!mode || !trunc || !queue) throw decodeError('CONFIG_NEW without alert mode, truncation or queue length');
    const modeValue = attrU8(mode);
    if (modeValue !== NET_DM_ALERT_MODE_SUMMARY && modeValue !== NET_DM_ALERT_MODE_PACKET)
      throw decodeError(`unknown alert mode ${modeValue}`);
    return {
      alertMode: modeValue === NET_DM_ALERT_MODE_PACKET ? 'packet' : 'summary',
      truncLen: attrU32(trunc),
      queueLen: attrU32(queue),
    };
  });
}

function tailDropped(a: NlAttr | undefined): { tailDropped: bigint } | undefined {
  if (!a) return undefined;
  const dropped = attrMap(a.data).get(NET_DM_ATTR_STATS_DROPPED);
  if (!dropped) throw decodeError(`statistics attribute ${a.type} without a dropped count`);
  return { tailDropped: attrU64(dropped) };
}

/** STATS_NEW, the answer to STATS_GET: the kernel's per-CPU queue tail drops, software and hardware. */
export function decodeStatsNew(msg: NlMessage): Omit<Stats, 'lost'> {
  return guarded('STATS_NEW', () => {
    const m = attrMap(attrsOf(msg, NET_DM_CMD_STATS_NEW, 'STATS_NEW'));
    const out: Omit<Stats, 'lost'> = {};
    const sw = tailDropped(m.get(NET_DM_ATTR_STATS));
    const hw = tailDropped(m.get(NET_DM_ATTR_HW_STATS));
    if (sw) out.software = sw;
    if (hw) out.hardware = hw;
    return out;
  });
}

/** A multicast message from the `events` group as a backend event; null for commands that are not alerts. */
export function decodeEvent(msg: NlMessage): BackendEvent | null {
  const cmd = netdmCommand(msg);
  if (cmd === NET_DM_CMD_ALERT) return { kind: 'summary', entries: decodeSummaryAlert(msg) };
  if (cmd === NET_DM_CMD_PACKET_ALERT) return { kind: 'packet', packet: decodePacketAlert(msg) };
  return null;
}

// ---------- encoders of what the kernel sends (for captures made without drop_monitor) ----------

/**
 * NET_DM as drop_monitor registers it (Linux 6.1: version 2, attributes up to REASON, its five commands with their
 * flags, the `events` group), under the family id `id`.
 */
export function netdmFamily(id: number): GenlFamilySpec {
  const admin = 0x0b; // GENL_ADMIN_PERM | GENL_CMD_CAP_DO | GENL_CMD_CAP_HASPOL
  const open = 0x0a; // GENL_CMD_CAP_DO | GENL_CMD_CAP_HASPOL
  return {
    name: NET_DM_FAMILY_NAME,
    id,
    version: NET_DM_FAMILY_VERSION,
    hdrsize: 0,
    maxattr: NET_DM_ATTR_REASON,
    ops: new Map([
      [NET_DM_CMD_CONFIG, admin],
      [NET_DM_CMD_START, admin],
      [NET_DM_CMD_STOP, admin],
      [NET_DM_CMD_CONFIG_GET, open],
      [NET_DM_CMD_STATS_GET, open],
    ]),
    mcastGroups: new Map([[NET_DM_GROUP_NAME, 1]]),
  };
}

/** IN_PORT: the device's index when known (0 is none, as the kernel leaves it out), then its name. */
function inPortAttr(port: PacketDrop['inPort']): Uint8Array {
  const attrs: Uint8Array[] = [];
  if (port?.ifindex) attrs.push(nlaU32(NET_DM_ATTR_PORT_NETDEV_IFINDEX, port.ifindex));
  if (port?.name !== undefined) attrs.push(nlaString(NET_DM_ATTR_PORT_NETDEV_NAME, port.name));
  return nlaNested(NET_DM_ATTR_IN_PORT, attrs);
}

/**
 * The PACKET_ALERT drop_monitor would send for `p` under the family id `familyId`, its attributes in the kernel's
 * order (net_dm_packet_report_fill, net_dm_hw_packet_report_fill): the inverse of decodePacketAlert. A field `p`
 * lacks is left out; a software alert always has its IN_PORT nest, a hardware one only with a port; PROTO comes only
 * with a payload.
 */
export function encodePacketAlert(p: PacketDrop, familyId: number): Uint8Array {
  const hw = p.origin === 'hardware';
  const attrs = [nlaU16(NET_DM_ATTR_ORIGIN, hw ? NET_DM_ORIGIN_HW : NET_DM_ORIGIN_SW)];
  if (hw) {
    if (p.trapGroup !== undefined) attrs.push(nlaString(NET_DM_ATTR_HW_TRAP_GROUP_NAME, p.trapGroup));
    if (p.trapName !== undefined) attrs.push(nlaString(NET_DM_ATTR_HW_TRAP_NAME, p.trapName));
    if (p.inPort !== undefined) attrs.push(inPortAttr(p.inPort));
    if (p.cookie !== undefined) attrs.push(nlaBinary(NET_DM_ATTR_FLOW_ACTION_COOKIE, p.cookie));
  } else {
    if (p.pc !== undefined) attrs.push(nlaU64(NET_DM_ATTR_PC, p.pc));
    if (p.reason !== undefined) attrs.push(nlaString(NET_DM_ATTR_REASON, p.reason));
    if (p.symbol !== undefined) attrs.push(nlaString(NET_DM_ATTR_SYMBOL, p.symbol));
    attrs.push(inPortAttr(p.inPort));
  }
  if (p.timestampNs !== undefined) attrs.push(nlaU64(NET_DM_ATTR_TIMESTAMP, p.timestampNs));
  if (p.origLen !== undefined) attrs.push(nlaU32(NET_DM_ATTR_ORIG_LEN, p.origLen));
  if (p.payload !== undefined && p.payload.length > 0) {
    attrs.push(nlaU16(NET_DM_ATTR_PROTO, p.protocol ?? 0));
    attrs.push(nlaBinary(NET_DM_ATTR_PAYLOAD, p.payload));
  }
  return encodeGenl({ family: familyId, cmd: NET_DM_CMD_PACKET_ALERT, version: NET_DM_FAMILY_VERSION }, attrs);
}
