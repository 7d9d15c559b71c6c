// Thin I/O over the addon's socket: sequence numbers, request/reply matching, multicast delivery, exact loss counts.

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
import { isNativeError, loadNative, type NativeError, type NativeSocket } from './native.js';

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

export interface SocketOptions {
  /** Legacy bind() group bitmask (groups 1..32); prefer addMembership(). */
  groups?: number;
  /** Receive buffer in bytes: SO_RCVBUFFORCE when allowed (CAP_NET_ADMIN), else SO_RCVBUF (capped by rmem_max). */
  rcvbuf?: number;
  /**
   * NETLINK_NO_ENOBUFS, default true. Without it, the first overflow marks the socket congested and the kernel then
   * drops every multicast until we have emptied the queue; with it only messages that do not fit are dropped. Either
   * way the exact count comes from the kernel's per-socket drop counter, read after every receive batch.
   */
  noEnobufs?: boolean;
  /** NETLINK_EXT_ACK (kernel error texts), default true; ignored where the kernel lacks it. */
  extAck?: boolean;
  /** NETLINK_CAP_ACK (errors echo only the request header), default true. */
  capAck?: boolean;
  /** Default per-request timeout in ms (a reply the kernel dropped for a full queue never comes); 0 = none. */
  timeoutMs?: number;
  /** Receive buffer per datagram in the addon, default 128 KiB. */
  scratchSize?: number;
  /** Datagrams read per event-loop wake-up, default 256. */
  batchSize?: number;
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

/** A request's NLMSG_ERROR (or NLMSG_DONE) with a non-zero errno, as request() rejects with it. */
export function kernelError(errno: number, extack?: ExtAck): KernelError {
  return new KernelError(errno, strerror(errno), extack?.msg);
}

/** Turns an addon error (errno + code) into our typed error; anything else is a bug and passes through. */
export function fromNative(err: unknown, what: string): Error {
  if (!isNativeError(err)) return err instanceof Error ? err : new Error(String(err));
  const e = new KernelError(err.errno, `${what}: ${strerror(err.errno)}`);
  return e;
}

/** The addon's datagrams, one Buffer and their ends, as one view each. */
export function splitBatch(datagrams: Buffer, ends: number[]): Uint8Array[] {
  const out: Uint8Array[] = new Array<Uint8Array>(ends.length);
  let start = 0;
  for (let i = 0; i < out.length; i++) {
    const end = ends[i]!;
    out[i] = new Uint8Array(datagrams.buffer, datagrams.byteOffset + start, end - start);
    start = end;
  }
  return out;
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

export class NetlinkSocket {
  readonly protocol: number;
  readonly portId: number;
  private readonly sock: NativeSocket;
  private readonly timeoutMs: number;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private messageListeners: MessagesListener[] = [];
  private lostListeners: LostListener[] = [];
  private errorListeners: ErrorListener[] = [];
  private lastDrops = 0;
  private readonly total: LostCounts = { dropped: 0, enobufs: 0, truncated: 0 };
  private userRef = false;
  private closed = false;
  /** Undelivered decode errors when no error listener is installed. */
  decodeErrors = 0;

  private constructor(protocol: number, sock: NativeSocket, portId: number, timeoutMs: number) {
    this.protocol = protocol;
    this.sock = sock;
    this.portId = portId;
    this.timeoutMs = timeoutMs;
  }

  /** Opens, configures and binds a socket and starts its receive loop (which does not keep the process alive by itself). */
  static open(protocol: number, options: SocketOptions = {}): NetlinkSocket {
    const { NetlinkSocket: Native } = loadNative();
    let sock: NativeSocket;
    try {
      sock = new Native(protocol, { scratchSize: options.scratchSize, batchSize: options.batchSize });
    } catch (err) {
      throw fromNative(err, `netlink socket(${protocol})`);
    }
    try {
      const opt = (level: number, name: number, value: number, what: string, optional = false): void => {
        try {
          sock.setsockopt(level, name, value);
        } catch (err) {
          if (!(optional && isNativeError(err) && err.code === 'ENOPROTOOPT')) throw fromNative(err, what);
        }
      };
      if (options.rcvbuf !== undefined) {
        try {
          sock.setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, options.rcvbuf);
        } catch (err) {
          if (!(isNativeError(err) && err.code === 'EPERM')) throw fromNative(err, 'SO_RCVBUFFORCE');
          opt(SOL_SOCKET, SO_RCVBUF, options.rcvbuf, 'SO_RCVBUF');
        }
      }
      if (options.extAck ?? true) opt(SOL_NETLINK, NETLINK_EXT_ACK, 1, 'NETLINK_EXT_ACK', true);
      if (options.capAck ?? true) opt(SOL_NETLINK, NETLINK_CAP_ACK, 1, 'NETLINK_CAP_ACK', true);
      if (options.noEnobufs ?? true) opt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1, 'NETLINK_NO_ENOBUFS');
      opt(SOL_NETLINK, NETLINK_PKTINFO, 1, 'NETLINK_PKTINFO');
      try {
        sock.bind(options.groups ?? 0);
      } catch (err) {
        throw fromNative(err, 'netlink bind');
      }
      let portId: number;
      let drops: number;
      try {
        portId = sock.portId();
        drops = sock.drops();
      } catch (err) {
        throw fromNative(err, 'netlink getsockname');
      }
      const s = new NetlinkSocket(protocol, sock, portId, options.timeoutMs ?? 10_000);
      s.lastDrops = drops;
      sock.unref();
      sock.start((err, datagrams, ends, groups, enobufs, truncated, dropsNow) =>
        s.onBatch(err, splitBatch(datagrams, ends), groups, enobufs, truncated, dropsNow),
      );
      return s;
    } catch (err) {
      sock.close();
      throw err;
    }
  }

  get fd(): number {
    return this.sock.fd;
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
      this.sock.setsockopt(level, name, value);
    } catch (err) {
      throw fromNative(err, `setsockopt(${level}, ${name})`);
    }
  }

  getOption(level: number, name: number): number {
    this.checkOpen();
    try {
      return this.sock.getsockopt(level, name);
    } catch (err) {
      throw fromNative(err, `getsockopt(${level}, ${name})`);
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
      return this.sock.send(bytes, pid, groups);
    } catch (err) {
      throw fromNative(err, 'netlink sendto');
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
        this.sock.send(bytes, 0, 0);
      } catch (err) {
        this.settle(seq);
        reject(fromNative(err, 'netlink sendto'));
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
        out.dropped += (this.sock.drops() - this.lastDrops) >>> 0;
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
    this.sock.close();
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
    if (this.userRef || this.pending.size > 0) this.sock.ref();
    else this.sock.unref();
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

  private onBatch(
    err: NativeError | null,
    datagrams: Uint8Array[],
    groups: number[],
    enobufs: number,
    truncated: number,
    drops: number,
  ): void {
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
    this.account(drops, enobufs, truncated);
    if (err) {
      // The receive loop has stopped: nothing more will arrive on this socket.
      const e = fromNative(err, 'netlink recvmsg') as DropwatchError;
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
