// A scripted kernel for tests: each socket is the real NetlinkEndpoint over a ScriptedPipe fed real captured bytes.
//
// A ScriptedPipe keeps what the kernel keeps for a netlink socket: a receive queue, group memberships and the sk_drops
// counter. What the endpoint sends reaches a `kernel` function (the test's script), which answers with datagrams and
// may act on other sockets meanwhile, as the kernel does inside sendto(). The receive loop hands the endpoint one batch
// per wake-up, as the addon's does: up to a batch of queued datagrams, then the drop counter. Wake-ups come on their own
// (a macrotask after something is queued) or, with autoWake off, only when the test calls wake(): that is how a test
// holds a reader behind.
import { strerror } from '../../src/errors/index.js';
import { decodeNlMsgs, type NlMessage } from '../../src/netlink/codec.js';
import {
  NETLINK_ADD_MEMBERSHIP,
  NETLINK_DROP_MEMBERSHIP,
  NetlinkEndpoint,
  SOL_NETLINK,
  type DatagramBatch,
  type DatagramPipe,
  type ErrnoError,
  type SocketOptions,
} from '../../src/netlink/socket.js';
import type { NetlinkTransport } from '../../src/netlink/transport.js';

/** The test's kernel: called with each message a socket sends; returns the datagrams it queues back on that socket. */
export type ScriptedKernel = (message: NlMessage, pipe: ScriptedPipe) => readonly Uint8Array[] | void;

// The addon's default batch size: a wake-up delivers at most this many datagrams.
const BATCH = 256;

/**
 * Captured datagram bytes readdressed to a request: every message in it gets the request's sequence number and the
 * socket's port id, as the kernel fills them in its answer.
 */
export function answer(bytes: Uint8Array, request: NlMessage, portId: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const v = new DataView(out.buffer);
  for (let off = 0; off + 16 <= out.length;) {
    v.setUint32(off + 8, request.header.seq, true);
    v.setUint32(off + 12, portId, true);
    off += (v.getUint32(off, true) + 3) & ~3;
  }
  return out;
}

/** The kernel's side of one socket, as the endpoint's DatagramPipe. */
export class ScriptedPipe implements DatagramPipe {
  readonly protocol: number;
  /** What the client opened the socket with. */
  readonly options: SocketOptions;
  readonly portId: number;
  /** Every message sent on this socket (request() and sendRaw() alike), in order. */
  readonly sent: NlMessage[] = [];
  /** Multicast groups joined. */
  readonly groups = new Set<number>();
  /** Whether the receive loop keeps the process alive (the client asked for it, or a request is pending). */
  referenced = false;
  /** Deliver on the next macrotask after something is queued, as the receive loop would; off: only wake() delivers. */
  autoWake = true;

  private readonly kernel: ScriptedKernel;
  private onBatch: ((batch: DatagramBatch) => void) | null = null;
  private closed = false;
  /** The receive loop has failed: nothing is read any more. */
  private failed = false;
  private queue: { bytes: Uint8Array; group: number }[] = [];
  private scheduled = false;
  private dropped = 0;
  private truncatedUnread = 0;
  private failure: ErrnoError | null = null;
  private readonly sockopts = new Map<string, number>();

  constructor(protocol: number, options: SocketOptions, portId: number, kernel: ScriptedKernel) {
    this.protocol = protocol;
    this.options = options;
    this.portId = portId;
    this.kernel = kernel;
  }

  // --- the kernel's side, for scripts and tests ---

  /** Queues a datagram for this socket: group 0 is unicast (replies), else the multicast group it came through. */
  enqueue(bytes: Uint8Array, group = 0): void {
    if (this.closed) return;
    this.queue.push({ bytes, group });
    this.schedule();
  }

  /** Multicasts to this socket as the kernel does: queued only when it is a member. Returns whether it was. */
  multicast(bytes: Uint8Array, group: number): boolean {
    if (!this.groups.has(group)) return false;
    this.enqueue(bytes, group);
    return true;
  }

  /** The kernel dropped `count` messages for this socket's full queue (sk_drops). */
  drop(count = 1): void {
    this.dropped += count;
    this.schedule();
  }

  /** `count` datagrams too large for the reader's buffer: cut and discarded when the next batch reads them. */
  truncate(count = 1): void {
    this.truncatedUnread += count;
    this.schedule();
  }

  /** The receive loop fails with this errno at the end of the next batch, as recvmsg(2) would; nothing arrives after. */
  fail(code: string, errno: number): void {
    this.failure = Object.assign(new Error(`recvmsg: ${strerror(errno)}`), { code, errno, syscall: 'recvmsg' });
    this.schedule();
  }

  /** Datagrams waiting in the receive queue. */
  get queued(): number {
    return this.queue.length;
  }

  /** Whether the endpoint has closed the socket. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** One wake-up of the receive loop: up to a batch of queued datagrams, then the losses counted meanwhile. */
  wake(): void {
    this.scheduled = false;
    if (this.closed || this.failed || !this.onBatch) return;
    const batch = this.queue.splice(0, this.options.batchSize ?? BATCH);
    const truncated = this.truncatedUnread;
    this.truncatedUnread = 0;
    const error = this.failure;
    this.failure = null;
    this.failed = error !== null;
    this.onBatch({
      datagrams: batch.map((d) => d.bytes),
      groups: batch.map((d) => d.group),
      enobufs: 0,
      truncated,
      drops: this.dropped,
      error,
    });
    if (this.queue.length > 0) this.schedule();
  }

  // --- DatagramPipe: the endpoint's side ---

  /** The kernel takes the message inside the send: the script answers and acts before the send returns. */
  send(bytes: Uint8Array): number {
    for (const m of decodeNlMsgs(bytes)) {
      this.sent.push(m);
      for (const d of this.kernel(m, this) ?? []) this.enqueue(d);
    }
    return bytes.length;
  }

  setsockopt(level: number, name: number, value: number): void {
    if (level === SOL_NETLINK && name === NETLINK_ADD_MEMBERSHIP) this.groups.add(value);
    else if (level === SOL_NETLINK && name === NETLINK_DROP_MEMBERSHIP) this.groups.delete(value);
    else this.sockopts.set(`${level}/${name}`, value);
  }

  getsockopt(level: number, name: number): number {
    return this.sockopts.get(`${level}/${name}`) ?? 0;
  }

  drops(): number {
    return this.dropped;
  }

  start(onBatch: (batch: DatagramBatch) => void): void {
    this.onBatch = onBatch;
    if (this.queue.length > 0) this.schedule();
  }

  ref(): void {
    this.referenced = true;
  }

  unref(): void {
    this.referenced = false;
  }

  close(): void {
    this.closed = true;
    this.groups.clear();
  }

  private schedule(): void {
    if (!this.autoWake || this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      if (this.scheduled) this.wake();
    });
  }
}

/**
 * Opens the real NetlinkEndpoint over a ScriptedPipe, all pipes answered by one kernel script; `sockets` lists the
 * pipes in the order they were opened.
 */
export class ScriptedTransport implements NetlinkTransport {
  readonly sockets: ScriptedPipe[] = [];
  private readonly kernel: ScriptedKernel;
  private nextPort: number;

  constructor(kernel: ScriptedKernel, firstPortId = 4000) {
    this.kernel = kernel;
    this.nextPort = firstPortId;
  }

  open(protocol: number, options: SocketOptions = {}): NetlinkEndpoint {
    const pipe = new ScriptedPipe(protocol, options, this.nextPort++, this.kernel);
    this.sockets.push(pipe);
    return new NetlinkEndpoint(pipe, {
      protocol,
      portId: pipe.portId,
      drops: pipe.drops(),
      timeoutMs: options.timeoutMs,
    });
  }
}
