// Loads the frames test/fixtures/packet/capture.sh captured from this machine's kernel, with tshark's reading of each.
import { readFileSync } from 'node:fs';
import { decodePcap } from '../../src/pcap/index.js';
import { fixturePath } from '../helpers/paths.js';
import { decodePacketAlert } from '../../src/netdm/codec.js';
import { fixtureMessage, readNetlinkPcap } from '../netdm/fixtures.js';
import { decodeNlMsgs } from '../../src/netlink/codec.js';
import type { PacketDrop } from '../../src/backend/types.js';

export interface Frame {
  number: number;
  bytes: Uint8Array;
  /** tshark's fields for this frame, by name; '' where tshark has none. */
  tshark: Record<string, string>;
}

/** Every frame of host-flows.pcap with its row of host-flows.tshark.tsv. */
export function hostFrames(): Frame[] {
  return capture('host-flows');
}

/**
 * The records of NAME.pcap in test/fixtures/packet, each with its row of NAME.tshark.tsv: host-flows (this machine),
 * guest-vlan (tagged frames) and guest-netdm (dwdump's NET_DM records) from the qemu guest.
 */
export function capture(name: string): Frame[] {
  const pcap = decodePcap(new Uint8Array(readFileSync(fixturePath('packet', `${name}.pcap`))));
  const [head, ...rows] = readFileSync(fixturePath('packet', `${name}.tshark.tsv`), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
  if (head === undefined || rows.length !== pcap.records.length)
    throw new Error(`${name}: ${pcap.records.length} frames, ${rows.length} tshark rows`);
  return pcap.records.map((r, i) => {
    const tshark: Record<string, string> = {};
    head.forEach((name, j) => (tshark[name] = rows[i]![j] ?? ''));
    return { number: i + 1, bytes: r.data, tshark };
  });
}

/** The PACKET_ALERTs drop_monitor sent in the qemu guest (test/fixtures/netdm): single files and dwdump's pcap. */
export function netdmPackets(): { name: string; packet: PacketDrop }[] {
  const out = ['packet-alert-0.bin', 'packet-alert-1.bin', 'packet-alert-2.bin', 'packet-alert-trunc20-0.bin'].map(
    (name) => ({ name, packet: decodePacketAlert(fixtureMessage(name)) }),
  );
  readNetlinkPcap('dwdump-packet.pcap')
    .slice(1)
    .forEach((r, i) =>
      out.push({ name: `dwdump-packet.pcap #${i + 2}`, packet: decodePacketAlert(decodeNlMsgs(r.netlink)[0]!) }),
    );
  return out;
}
