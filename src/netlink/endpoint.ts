// A netlink socket's protocol side, OS-free: sequence numbers, request/reply matching, multicast delivery, loss counts.

import { DropwatchError, KernelError, strerror } from '../errors/index.js';
import {
  decodeDone,
  decodeNlError,
  decodeNlMsgs,
  encodeNlMsg,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  type ExtAck,
  type NlMessage,
} from './codec.js';

export const NETLINK_ROUTE = 0;
export const NETLINK_USERSOCK = 2;
export const NETLINK_GENERIC = 16;

export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;

export const SOL_NETLINK = 270;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_DROP_MEMBERSHIP = 2;
export const NETLINK_PKTINFO = 3;
export const NETLINK_BROADCAST_ERROR = 4;
export const NETLINK_NO_ENOBUFS = 5;
export const NETLINK_LISTEN_ALL_NSID = 8;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

/** A failed socket call, as the addon throws it and a pipe reports it: `code` is the errno name, `errno` positive. */
export interface ErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export function isErrnoError(err: unknown): err is ErrnoError {
  return err instanceof Error && typeof (err as Partial<ErrnoError>).errno === 'number';
}

/** Turns a socket call's errno error into our typed error; anything else is a bug and passes through. */
export function fromErrno(err: unknown, what: string): Error {
  if (!isErrnoError(err)) return err instanceof Error ? err : new Error(String(err));
  return new KernelError(err.errno, `${what}: ${strerror(err.errno)}`);
}

/** A request's NLMSG_ERROR (or NLMSG_DONE) with a non-zero errno, as request() rejects with it. */
export function kernelError(errno: number, extack?: ExtAck): KernelError {
  return new KernelError(errno, strerror(errno), extack?.msg);
}

/** What one wake-up of a receive loop read: its datagrams in order, then the losses counted meanwhile. */
export interface DatagramBatch {
  datagrams: Uint8Array[];
  /** Per datagram: the multicast group it came through (NETLINK_PKTINFO), 0 for unicast. */
  groups: number[];
  /** ENOBUFS errors met on receive (only without NETLINK_NO_ENOBUFS). */
  enobufs: number;
  /** Datagrams larger than the receive buffer, cut and discarded. */
  truncated: number;
  /** The kernel's cumulative drop counter for the socket (sk_drops, u32, wraps); -1 if unreadable. */
  drops: number;
  /** The receive loop failed after these datagrams: nothing more arrives. */
  error: ErrnoError | null;
}

/**
 * A bound netlink socket as bytes in and out: the addon's (src/netlink/socket.ts) or a test's scripted kernel. Calls
 * that fail throw an ErrnoError.
 */
export interface DatagramPipe {
  /** Sends bytes to a port id or multicast groups; 0/0 is the kernel, which acts on a request inside the send. */
  send(bytes: Uint8Array, pid: number, groups: number): number;
  setsockopt(level: number, name: number, value: number): void;
  getsockopt(level: number, name: number): number;
  /** The kernel's drop counter for the socket now (sk_drops, u32). */
  drops(): number;
  /** Starts the receive loop: one call per wake-up. */
  start(onBatch: (batch: DatagramBatch) => void): void;
  /** Whether the receive loop keeps the process alive. */
  ref(): void;
  unref(): void;
  close(): void;
}

/** What the endpoint learns of its pipe when it is opened. */
export interface EndpointInit {
  protocol: number;
  portId: number;
  /** The kernel's drop counter at open: losses count from here. */
  drops: number;
  /** Default per-request timeout in ms (a reply the kernel dropped for a full queue never comes); 0 = none. */
  timeoutMs?: number;
}

export interface RequestOptions {
  /** NLM_F_DUMP: the reply is a multipart series ending in NLMSG_DONE. */
  dump?: boolean;
  /** Extra nlmsg_flags. */
  flags?: number;
  timeoutMs?: number;
}

/** A message that is not a reply to one of our requests: multicast events and other unsolicited messages. */
export interface ReceivedMessage extends NlMessage {
  /** Multicast group id it came through (NETLINK_PKTINFO), 0 for unicast. */
  group: number;
}

export interface LostCounts {
  /** Messages the kernel dropped for this socket because its queue was full (sk_drops, exact). */
  dropped: number;
  /** ENOBUFS errors reported on receive (only without noEnobufs; each may stand for many drops). */
  enobufs: number;
  /** Datagrams larger than the receive buffer, cut and discarded. */
  truncated: number;
}

export type MessagesListener = (messages: ReceivedMessage[]) => void;
export type LostListener = (delta: LostCounts, total: LostCounts) => void;
export type ErrorListener = (err: DropwatchError) => void;

interface Pending {
  replies: NlMessage[];
  resolve: (replies: NlMessage[]) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

// A throwing listener is its owner's bug: surface it as an uncaught exception, but only after this batch's
// bookkeeping (replies, loss counts) is complete.
function guard(call: () => void): void {
  try {
    call();
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}

/** One netlink socket over a DatagramPipe whose receive loop it starts (which does not keep the process alive). */
export class NetlinkEndpoint {
  readonly protocol: number;
  readonly portId: number;
  private readonly pipe: DatagramPipe;
  private readonly timeoutMs: number;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private messageListeners: MessagesListener[] = [];
  private lostListeners: LostListener[] = [];
  private errorListeners: ErrorListener[] = [];
  private lastDrops: number;
  private readonly total: LostCounts = { dropped: 0, enobufs: 0, truncated: 0 };
  private userRef = false;
  private closed = false;
  /** Undelivered decode errors when no error listener is installed. */
  decodeErrors = 0;

  constructor(pipe: DatagramPipe, init: EndpointInit) {
    this.protocol = init.protocol;
    this.pipe = pipe;
    this.portId = init.portId;
    this.lastDrops = init.drops;
    this.timeoutMs = init.timeoutMs ?? 10_000;
    pipe.unref();
    pipe.start((batch) => this.onBatch(batch));
  }

  /** Keep the process alive while this socket is open (e.g. while listening for multicast events). */
  ref(): this {
    this.userRef = true;
    this.updateRef();
    return this;
  }

  unref(): this {
    this.userRef = false;
    this.updateRef();
    return this;
  }

  setOption(level: number, name: number, value: number): void {
    this.checkOpen();
    try {
      this.pipe.setsockopt(level, name, value);
    } catch (err) {
      throw fromErrno(err, `setsockopt(${level}, ${name})`);
    }
  }

  getOption(level: number, name: number): number {
    this.checkOpen();
    try {
      return this.pipe.getsockopt(level, name);
    } catch (err) {
      throw fromErrno(err, `getsockopt(${level}, ${name})`);
    }
  }

  /** Joins a multicast group by id (as nlctrl reports it); joining NET_DM's `events` needs CAP_SYS_ADMIN. */
  addMembership(group: number): void {
    this.setOption(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group);
  }

  dropMembership(group: number): void {
    this.setOption(SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, group);
  }

  /** The next sequence number; never 0, which unsolicited kernel messages carry. */
  nextSeq(): number {
    this.seq = (this.seq % 0xffffffff) + 1;
    return this.seq;
  }

  /** Sends ready-made bytes (one or more messages) to a port id or multicast groups; 0/0 is the kernel. */
  sendRaw(bytes: Uint8Array, pid = 0, groups = 0): number {
    this.checkOpen();
    try {
      return this.pipe.send(bytes, pid, groups);
    } catch (err) {
      throw fromErrno(err, 'netlink sendto');
    }
  }

  /**
   * Sends one request (header built here, body is everything after nlmsghdr) and resolves with the reply messages,
   * without the final ACK or NLMSG_DONE. A kernel error rejects with KernelError(errno, strerror, extack).
   */
  request(type: number, body: Uint8Array | readonly Uint8Array[], options: RequestOptions = {}): Promise<NlMessage[]> {
    if (this.closed) return Promise.reject(new DropwatchError('E_STATE', 'netlink socket is closed'));
    const seq = this.nextSeq();
    const flags = NLM_F_REQUEST | (options.dump ? NLM_F_DUMP : NLM_F_ACK) | (options.flags ?? 0);
    const bytes = encodeNlMsg({ type, flags, seq, pid: 0 }, body);
    return new Promise<NlMessage[]>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.timeoutMs;
      const p: Pending = { replies: [], resolve, reject, timer: undefined };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.settle(seq);
          reject(
            new DropwatchError('E_IO', `netlink request (type ${type}, seq ${seq}) got no reply in ${timeoutMs} ms`),
          );
        }, timeoutMs);
      }
      this.pending.set(seq, p);
      this.updateRef();
      try {
        // The kernel handles a request inside sendto(); replies arrive through the receive loop.
        this.pipe.send(bytes, 0, 0);
      } catch (err) {
        this.settle(seq);
        reject(fromErrno(err, 'netlink sendto'));
      }
    });
  }

  /** Multicast and other unsolicited messages, one call per receive batch. Returns an unsubscribe function. */
  onMessages(listener: MessagesListener): () => void {
    this.messageListeners.push(listener);
    return () => {
      this.messageListeners = this.messageListeners.filter((l) => l !== listener);
    };
  }

  /** Losses, as soon as a receive batch notices them. */
  onLost(listener: LostListener): () => void {
    this.lostListeners.push(listener);
    return () => {
      this.lostListeners = this.lostListeners.filter((l) => l !== listener);
    };
  }

  /** Undecodable datagrams (E_DECODE) and a failed receive loop (E_KERNEL); the socket survives the former. */
  onError(listener: ErrorListener): () => void {
    this.errorListeners.push(listener);
    return () => {
      this.errorListeners = this.errorListeners.filter((l) => l !== listener);
    };
  }

  /**
   * Everything lost since open, including drops the kernel has counted but no receive batch has reported yet (those
   * still reach onLost listeners with the next batch, which a drop always causes: it means the queue is not empty).
   */
  lost(): LostCounts {
    const out = { ...this.total };
    if (!this.closed) {
      try {
        out.dropped += (this.pipe.drops() - this.lastDrops) >>> 0;
      } catch {
        // an unreadable counter leaves the last known total
      }
    }
    return out;
  }

  /** Closes the socket; pending requests reject with E_STATE. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pipe.close();
    for (const seq of [...this.pending.keys()]) {
      const p = this.settle(seq);
      p?.reject(new DropwatchError('E_STATE', 'netlink socket closed with a request pending'));
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private checkOpen(): void {
    if (this.closed) throw new DropwatchError('E_STATE', 'netlink socket is closed');
  }

  private updateRef(): void {
    if (this.closed) return;
    if (this.userRef || this.pending.size > 0) this.pipe.ref();
    else this.pipe.unref();
  }

  private settle(seq: number): Pending | undefined {
    const p = this.pending.get(seq);
    if (!p) return undefined;
    this.pending.delete(seq);
    if (p.timer) clearTimeout(p.timer);
    this.updateRef();
    return p;
  }

  private emitError(err: DropwatchError): void {
    if (this.errorListeners.length === 0) {
      this.decodeErrors++;
      return;
    }
    for (const l of this.errorListeners) guard(() => l(err));
  }

  private account(drops: number, enobufs: number, truncated: number): void {
    const delta: LostCounts = { dropped: 0, enobufs, truncated };
    if (drops >= 0) {
      delta.dropped = (drops - this.lastDrops) >>> 0; // the kernel counter is 32 bits and wraps
      this.lastDrops = drops;
    }
    if (delta.dropped === 0 && enobufs === 0 && truncated === 0) return;
    this.total.dropped += delta.dropped;
    this.total.enobufs += enobufs;
    this.total.truncated += truncated;
    for (const l of this.lostListeners) guard(() => l(delta, { ...this.total }));
  }

  private onBatch(batch: DatagramBatch): void {
    const { datagrams, groups } = batch;
    const unsolicited: ReceivedMessage[] = [];
    for (let i = 0; i < datagrams.length; i++) {
      const group = groups[i] ?? 0;
      let msgs: NlMessage[];
      try {
        msgs = decodeNlMsgs(datagrams[i]!);
      } catch (e) {
        this.emitError(e instanceof DropwatchError ? e : new DropwatchError('E_DECODE', String(e)));
        continue;
      }
      for (const m of msgs) {
        if (group === 0 && m.header.pid === this.portId && this.pending.has(m.header.seq)) this.reply(m);
        else unsolicited.push({ header: m.header, payload: m.payload, raw: m.raw, group });
      }
    }
    if (unsolicited.length > 0) for (const l of this.messageListeners) guard(() => l(unsolicited));
    this.account(batch.drops, batch.enobufs, batch.truncated);
    if (batch.error) {
      // The receive loop has stopped: nothing more will arrive on this socket.
      const e = fromErrno(batch.error, 'netlink recvmsg') as DropwatchError;
      for (const seq of [...this.pending.keys()]) this.settle(seq)?.reject(e);
      this.emitError(e);
    }
  }

  private reply(m: NlMessage): void {
    const seq = m.header.seq;
    const p = this.pending.get(seq)!;
    try {
      if (m.header.type === NLMSG_ERROR) {
        const e = decodeNlError(m);
        this.settle(seq);
        if (e.errno === 0) p.resolve(p.replies);
        else p.reject(kernelError(e.errno, e.extack));
      } else if (m.header.type === NLMSG_DONE) {
        const d = decodeDone(m);
        this.settle(seq);
        if (d.errno === 0) p.resolve(p.replies);
        else p.reject(kernelError(d.errno, d.extack));
      } else if (m.header.type !== NLMSG_NOOP) {
        p.replies.push(m);
      }
    } catch (e) {
      this.settle(seq);
      p.reject(e);
    }
  }
}
