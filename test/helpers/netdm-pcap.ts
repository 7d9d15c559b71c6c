// The NET_DM packet alerts in a pcap that dwdump wrote (ours or Debian's), decoded with our codec, frame by frame.
import assert from 'node:assert/strict';
import { decodePcap, decodeSll, type PcapFile, type Timestamp } from '../../src/pcap/index.js';
import { decodeNlMsgs } from '../../src/netlink/codec.js';
import { decodePacketAlert } from '../../src/netdm/codec.js';
import type { PacketDrop } from '../../src/backend/types.js';

export interface PcapAlert {
  /** 1-based, as Wireshark numbers frames. */
  frame: number;
  /** The record header's time. */
  ts: Timestamp;
  drop: PacketDrop;
}

/** Every record after the first (the family record) is one PACKET_ALERT; anything else fails the assertion. */
export function pcapAlerts(bytes: Uint8Array): { file: PcapFile; alerts: PcapAlert[] } {
  const file = decodePcap(bytes);
  const alerts = file.records.slice(1).map((r, i) => {
    const msgs = decodeNlMsgs(decodeSll(r.data).payload);
    assert.equal(msgs.length, 1, `record ${i + 2} holds ${msgs.length} messages`);
    return { frame: i + 2, ts: r.ts, drop: decodePacketAlert(msgs[0]!) };
  });
  return { file, alerts };
}
