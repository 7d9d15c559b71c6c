// Loads the NET_DM bytes captured from the qemu guest's kernel (test/fixtures/netdm, see its manifest.json).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeNlMsgs, type NlMessage } from '../../src/netlink/codec.js';
import { fixturePath } from '../helpers/paths.js';

export const NETDM_FIXTURES = fixturePath('netdm');

export interface ManifestMessage {
  name: string;
  note: string;
  len: number;
  type: number;
  flags: number;
  seq: number;
  pid: number;
  genl_cmd?: number;
  genl_version?: number;
  cmd_name?: string;
  error?: number;
  errno?: string;
  extack?: { msg?: string };
}

export const manifest = JSON.parse(readFileSync(join(NETDM_FIXTURES, 'manifest.json'), 'utf8')) as {
  kernel: { release: string };
  info: string[];
  files: string[];
  messages: ManifestMessage[];
};

export function fixtureBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(NETDM_FIXTURES, name)));
}

export function fixtureText(name: string): string {
  return readFileSync(join(NETDM_FIXTURES, name), 'utf8');
}

/** The one message in a .bin fixture. */
export function fixtureMessage(name: string): NlMessage {
  const msgs = decodeNlMsgs(fixtureBytes(name));
  if (msgs.length !== 1) throw new Error(`${name}: ${msgs.length} messages`);
  return msgs[0]!;
}

export interface PcapRecord {
  /** Linux cooked header packet type (0 to us, 4 outgoing). */
  packetType: number;
  /** The netlink message bytes after the 16-byte cooked header. */
  netlink: Uint8Array;
}

/** Classic pcap with LINKTYPE_NETLINK (253): a 16-byte cooked header, then one netlink message. */
export function readNetlinkPcap(name: string): PcapRecord[] {
  const b = Buffer.from(fixtureBytes(name));
  if (b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${name}: not a little-endian classic pcap`);
  if (b.readUInt32LE(20) !== 253) throw new Error(`${name}: link type ${b.readUInt32LE(20)}, not NETLINK`);
  const out: PcapRecord[] = [];
  let off = 24;
  while (off + 16 <= b.length) {
    const caplen = b.readUInt32LE(off + 8);
    const rec = b.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    out.push({ packetType: rec.readUInt16BE(0), netlink: new Uint8Array(rec.subarray(16)) });
  }
  return out;
}
