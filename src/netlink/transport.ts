// The netlink socket as protocol clients use it: an interface, so a client runs over the kernel or a test's script.

import type { NlMessage } from './codec.js';
import {
  NetlinkSocket,
  type ErrorListener,
  type LostCounts,
  type LostListener,
  type MessagesListener,
  type RequestOptions,
  type SocketOptions,
} from './socket.js';

/**
 * One bound netlink socket with its receive loop running: a NetlinkEndpoint, over the addon (NetlinkSocket) or over a
 * test's scripted datagram pipe, so the same client code is driven byte for byte without root or a kernel family.
 */
export interface NetlinkChannel {
  readonly portId: number;
  readonly isClosed: boolean;
  /** The next sequence number for a message built by the caller; never 0. */
  nextSeq(): number;
  /** One request: resolves with its replies once the ACK or NLMSG_DONE comes; a kernel error rejects (KernelError). */
  request(type: number, body: Uint8Array | readonly Uint8Array[], options?: RequestOptions): Promise<NlMessage[]>;
  /** Ready-made bytes, no reply awaited (the kernel acts on a request inside the send). */
  sendRaw(bytes: Uint8Array, pid?: number, groups?: number): number;
  addMembership(group: number): void;
  dropMembership(group: number): void;
  /** Unsolicited messages (multicast, replies to raw sends), one call per receive batch. */
  onMessages(listener: MessagesListener): () => void;
  /** The batch's loss delta and the running totals, after that batch's messages. */
  onLost(listener: LostListener): () => void;
  /** Undecodable datagrams (E_DECODE: the socket goes on) and a failed receive loop (nothing more arrives). */
  onError(listener: ErrorListener): () => void;
  /** Everything lost since open, with drops the kernel counted that no batch has reported yet. */
  lost(): LostCounts;
  /** Keep the process alive while open, or not. */
  ref(): unknown;
  unref(): unknown;
  /** Pending requests reject with E_STATE. Idempotent. */
  close(): void;
}

/** Opens sockets: the kernel's, or a test's script. */
export interface NetlinkTransport {
  open(protocol: number, options?: SocketOptions): NetlinkChannel;
}

/** The real transport: NetlinkSocket over the native addon. */
export const netlinkTransport: NetlinkTransport = {
  open: (protocol, options) => NetlinkSocket.open(protocol, options),
};
