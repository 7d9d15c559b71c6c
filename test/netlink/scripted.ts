// A scripted NetlinkTransport for tests: a client's sockets without a kernel, fed real captured bytes.
//
// Each ScriptedSocket keeps what the kernel keeps for a netlink socket: a receive queue, group memberships and the
// sk_drops counter. What it sends reaches a `kernel` function (the test's script), which answers with datagrams and may
// act on other sockets meanwhile, as the kernel does inside sendto(). The receive side follows NetlinkSocket: one batch
// per wake-up, replies matched to pending requests by sequence number and port id, the rest to onMessages, then the
// loss delta to onLost. Wake-ups come on their own (a macrotask after something is queued) or, with autoWake off, only
// when the test calls wake(): that is how a test holds a reader behind.
import { DropwatchError } from '../../src/errors/index.js';
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
  type NlMessage,
} from '../../src/netlink/codec.js';
import {
  kernelError,
  type ErrorListener,
  type LostCounts,
  type LostListener,
  type MessagesListener,
  type ReceivedMessage,
  type RequestOptions,
  type SocketOptions,
} from '../../src/netlink/socket.js';
import type { NetlinkChannel, NetlinkTransport } from '../../src/netlink/transport.js';

/** The test's kernel: called with each message a socket sends; returns the datagrams it queues back on that socket. */
export type ScriptedKernel = (message: NlMessage, socket: ScriptedSocket) => readonly Uint8Array[] | void;

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

interface Pending {
  replies: NlMessage[];
  resolve: (replies: NlMessage[]) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

export class ScriptedSocket implements NetlinkChannel {
  readonly protocol: number;
  readonly options: SocketOptions;
  readonly portId: number;
  /** Every message sent on this socket (request() and sendRaw() alike), in order. */
  readonly sent: NlMessage[] = [];
  /** Multicast groups joined. */
  readonly groups = new Set<number>();
  /** Whether the client asked to keep the process alive (ref) for this socket. */
  referenced = false;
  /** Deliver on the next macrotask after something is queued, as the receive loop would; off: only wake() delivers. */
  autoWake = true;

  private readonly kernel: ScriptedKernel;
  private seq = 0;
  private closed = false;
  private queue: { bytes: Uint8Array; group: number }[] = [];
  private scheduled = false;
  private drops = 0;
  private lastDrops = 0;
  private truncatedUnread = 0;
  private failure: DropwatchError | null = null;
  private readonly total: LostCounts = { dropped: 0, enobufs: 0, truncated: 0 };
  private readonly pending = new Map<number, Pending>();
  private messageListeners: MessagesListener[] = [];
  private lostListeners: LostListener[] = [];
  private errorListeners: ErrorListener[] = [];

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
    this.drops += count;
    this.schedule();
  }

  /** `count` datagrams too large for the reader's buffer: cut and discarded when the next batch reads them. */
  truncate(count = 1): void {
    this.truncatedUnread += count;
    this.schedule();
  }

  /** The receive loop fails with this error at the end of the next batch; nothing arrives after it. */
  fail(err: DropwatchError): void {
    this.failure = err;
    this.schedule();
  }

  /** Datagrams waiting in the receive queue. */
  get queued(): number {
    return this.queue.length;
  }

  /** One wake-up of the receive loop: up to a batch of queued datagrams, then the losses counted meanwhile. */
  wake(): void {
    this.scheduled = false;
    if (this.closed) return;
    const batch = this.queue.splice(0, this.options.batchSize ?? BATCH);
    const truncated = this.truncatedUnread;
    this.truncatedUnread = 0;
    const unsolicited: ReceivedMessage[] = [];
    for (const { bytes, group } of batch) {
      let msgs: NlMessage[];
      try {
        msgs = decodeNlMsgs(bytes);
      } catch (e) {
        this.emitError(e instanceof DropwatchError ? e : new DropwatchError('E_DECODE', String(e)));
        continue;
      }
      for (const m of msgs) {
        if (group === 0 && m.header.pid === this.portId && this.pending.has(m.header.seq)) this.reply(m);
        else unsolicited.push({ header: m.header, payload: m.payload, raw: m.raw, group });
      }
    }
    if (unsolicited.length > 0) for (const l of this.messageListeners) l(unsolicited);
    this.account(truncated);
    const failure = this.failure;
    if (failure) {
      this.failure = null;
      for (const seq of [...this.pending.keys()]) this.settle(seq)?.reject(failure);
      this.emitError(failure);
      this.closed = true;
      return;
    }
    if (this.queue.length > 0) this.schedule();
  }

  // --- NetlinkChannel ---

  get isClosed(): boolean {
    return this.closed;
  }

  nextSeq(): number {
    this.seq = (this.seq % 0xffffffff) + 1;
    return this.seq;
  }

  request(type: number, body: Uint8Array | readonly Uint8Array[], options: RequestOptions = {}): Promise<NlMessage[]> {
    if (this.closed) return Promise.reject(new DropwatchError('E_STATE', 'netlink socket is closed'));
    const seq = this.nextSeq();
    const flags = NLM_F_REQUEST | (options.dump ? NLM_F_DUMP : NLM_F_ACK) | (options.flags ?? 0);
    const bytes = encodeNlMsg({ type, flags, seq, pid: 0 }, body);
    return new Promise<NlMessage[]>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? 10_000;
      const p: Pending = { replies: [], resolve, reject, timer: undefined };
      if (timeoutMs > 0)
        p.timer = setTimeout(() => {
          this.settle(seq);
          reject(
            new DropwatchError('E_IO', `netlink request (type ${type}, seq ${seq}) got no reply in ${timeoutMs} ms`),
          );
        }, timeoutMs);
      this.pending.set(seq, p);
      this.deliver(bytes);
    });
  }

  sendRaw(bytes: Uint8Array): number {
    if (this.closed) throw new DropwatchError('E_STATE', 'netlink socket is closed');
    this.deliver(bytes);
    return bytes.length;
  }

  addMembership(group: number): void {
    if (this.closed) throw new DropwatchError('E_STATE', 'netlink socket is closed');
    this.groups.add(group);
  }

  dropMembership(group: number): void {
    if (this.closed) throw new DropwatchError('E_STATE', 'netlink socket is closed');
    this.groups.delete(group);
  }

  onMessages(listener: MessagesListener): () => void {
    this.messageListeners.push(listener);
    return () => (this.messageListeners = this.messageListeners.filter((l) => l !== listener));
  }

  onLost(listener: LostListener): () => void {
    this.lostListeners.push(listener);
    return () => (this.lostListeners = this.lostListeners.filter((l) => l !== listener));
  }

  onError(listener: ErrorListener): () => void {
    this.errorListeners.push(listener);
    return () => (this.errorListeners = this.errorListeners.filter((l) => l !== listener));
  }

  lost(): LostCounts {
    const out = { ...this.total };
    if (!this.closed) out.dropped += this.drops - this.lastDrops;
    return out;
  }

  ref(): this {
    this.referenced = true;
    return this;
  }

  unref(): this {
    this.referenced = false;
    return this;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.groups.clear();
    for (const seq of [...this.pending.keys()])
      this.settle(seq)?.reject(new DropwatchError('E_STATE', 'netlink socket closed with a request pending'));
  }

  // --- internals ---

  /** The kernel takes the message inside the send: the script answers and acts before the send returns. */
  private deliver(bytes: Uint8Array): void {
    for (const m of decodeNlMsgs(bytes)) {
      this.sent.push(m);
      for (const d of this.kernel(m, this) ?? []) this.enqueue(d);
    }
  }

  private schedule(): void {
    if (!this.autoWake || this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      if (this.scheduled) this.wake();
    });
  }

  private account(truncated: number): void {
    const delta: LostCounts = { dropped: this.drops - this.lastDrops, enobufs: 0, truncated };
    this.lastDrops = this.drops;
    if (delta.dropped === 0 && truncated === 0) return;
    this.total.dropped += delta.dropped;
    this.total.truncated += truncated;
    for (const l of this.lostListeners) l(delta, { ...this.total });
  }

  private emitError(err: DropwatchError): void {
    for (const l of this.errorListeners) l(err);
  }

  private settle(seq: number): Pending | undefined {
    const p = this.pending.get(seq);
    if (!p) return undefined;
    this.pending.delete(seq);
    if (p.timer) clearTimeout(p.timer);
    return p;
  }

  private reply(m: NlMessage): void {
    const seq = m.header.seq;
    const p = this.pending.get(seq)!;
    try {
      if (m.header.type === NLMSG_ERROR || m.header.type === NLMSG_DONE) {
        const e = m.header.type === NLMSG_ERROR ? decodeNlError(m) : decodeDone(m);
        this.settle(seq);
        if (e.errno === 0) p.resolve(p.replies);
        else p.reject(kernelError(e.errno, e.extack));
      } else if (m.header.type !== NLMSG_NOOP) {
        p.replies.push(m);
      }
    } catch (e) {
      this.settle(seq);
      p.reject(e);
    }
  }
}

/** Opens ScriptedSockets, all answered by one kernel script; `sockets` lists them in the order they were opened. */
export class ScriptedTransport implements NetlinkTransport {
  readonly sockets: ScriptedSocket[] = [];
  private readonly kernel: ScriptedKernel;
  private nextPort: number;

  constructor(kernel: ScriptedKernel, firstPortId = 4000) {
    this.kernel = kernel;
    this.nextPort = firstPortId;
  }

  open(protocol: number, options: SocketOptions = {}): ScriptedSocket {
    const s = new ScriptedSocket(protocol, options, this.nextPort++, this.kernel);
    this.sockets.push(s);
    return s;
  }
}
