// NetdmClient: the NET_DM protocol over our netlink sockets, shared by dropwatch's backend (which decodes the alerts)
// and dwdump (which writes them raw to a pcap).
//
// Two sockets, as Debian's dwdump has them: a control socket for CONFIG/START/STOP/CONFIG_GET/STATS_GET and a data
// socket joined to `events` whose receive buffer only alerts fill. On one shared socket a storm fills the queue, the
// kernel drops the reply to a request queued behind the alerts, and the request (a STOP on the way out, say) only
// fails on its timeout. Apart, the control socket's queue never holds an alert, and the data socket's order is
// restored by drain(): a marker reply queued behind every alert sent before it.
// Both sockets come from a NetlinkTransport: openNetdmClient() uses the kernel's, tests a scripted one.

import type { MonitorConfig, StartOptions, Stats } from '../backend/types.js';
import { DropwatchError, KernelError, strerror } from '../errors/index.js';
import { encodeNlMsg, NLM_F_REQUEST, type NlMessage } from '../netlink/codec.js';
import { GenlFamilyNotFoundError, getFamily, type GenlFamily } from '../netlink/nlctrl.js';
import { NETLINK_GENERIC, type LostCounts, type ReceivedMessage } from '../netlink/socket.js';
import { netlinkTransport, type NetlinkChannel, type NetlinkTransport } from '../netlink/transport.js';
import {
  decodeConfigNew,
  decodeStatsNew,
  encodeConfig,
  encodeConfigGet,
  encodeStart,
  encodeStatsGet,
  encodeStop,
  NET_DM_CMD_CONFIG_NEW,
  NET_DM_CMD_STATS_NEW,
  NET_DM_FAMILY_NAME,
  NET_DM_GROUP_NAME,
  netdmCommand,
} from './codec.js';

const EPERM = 1;
const EAGAIN = 11;
const EBUSY = 16;
const EOPNOTSUPP = 95;

/** Where socket overruns are reported (lost events, getStats().lost, dwdump's count). */
export const LOST_SOCKET = 'netlink socket';
/** Alerts that reached us but did not decode: lost to the user all the same. */
export const LOST_UNDECODABLE = 'undecodable NET_DM messages';
/** Alerts still queued on our socket when the drain at stop ran out of time: read and counted, not handed over. */
export const LOST_UNREAD = 'netlink socket, unread at stop';

/** Appended to the kernel's text when START answers EAGAIN. */
export const ALREADY_MONITORING_HINT =
  'NET_DM is already monitoring for another process, or for one killed while monitoring; ' +
  'a stop from any process ends it (the `stop` command of Debian dropwatch, for one)';

/** Sent when the family has no `events` group (no kernel with NET_DM lacks it, so no tool words it its own way). */
export const NO_EVENTS_GROUP_MESSAGE = `NET_DM has no "${NET_DM_GROUP_NAME}" multicast group on this kernel`;

// Larger than any NET_DM message (a payload attribute near 64 KiB plus the others), so none is ever cut.
const DATA_SCRATCH = 128 * 1024;
/** How long alerts still queued at a stop may take to reach the listener, the wait for STOP's ack included. */
const DRAIN_MS = 1_000;
/** After a drain's budget, how long reading (and counting) the rest of the queue may take before the drain gives up. */
const COUNT_MS = 1_000;
const NOT_STARTED: StartOptions = { sw: false, hw: false };

export type NetdmRequest = 'config' | 'start' | 'stop';

export interface NetdmClientOptions {
  /** The E_NETDM_MISSING sentence when the kernel has no NET_DM: each tool says it as its Debian namesake does. */
  missingMessage: string;
  /** Per-request timeout in ms (default 10 s). */
  timeoutMs?: number;
  /**
   * What the user can do about refusals whose remedy is the tool's own (its options or commands): appended after
   * the kernel's text. Without one the kernel's text stands alone (dropwatch's REPL adds its own line for EBUSY).
   */
  remedies?: {
    /** CONFIG refused with EBUSY: another session is monitoring. */
    busy?: string;
    /** START refused with EOPNOTSUPP: hardware drops need a devlink device. */
    hardware?: string;
  };
}

/** Alerts and their losses as they arrive on the data socket. */
export interface NetdmListener {
  /** Messages from the `events` group, raw, one call per receive batch. */
  alerts(messages: ReceivedMessage[]): void;
  /** Alerts lost between the kernel and us: `where` is LOST_SOCKET or LOST_UNDECODABLE. */
  lost(count: number, where: string): void;
  /** The data socket's receive loop failed: nothing more will arrive. */
  error(err: DropwatchError): void;
}

export interface NetdmLost {
  /** Alerts the kernel dropped for our full queue, or cut for our buffer. */
  socket: number;
  /** Alerts that arrived but did not decode. */
  undecodable: number;
  /** Alerts left on the socket when a drain ran out of time, counted as read instead of handed to the listener. */
  unread: number;
}

/**
 * A NET_DM request the kernel refused. As a KernelError it carries the errno and, as extack, the kernel's text with
 * the hint appended (what dropwatch prints); kernelText and hint stay apart for tools that word the line themselves.
 */
export class NetdmRefusal extends KernelError {
  readonly request: NetdmRequest;
  readonly kernelText: string | undefined;
  readonly hint: string | undefined;
  constructor(request: NetdmRequest, err: KernelError, hint: string | undefined) {
    // The request is named only where a hint explains it; otherwise the message stays the kernel's errno text.
    super(
      err.errno,
      hint === undefined ? err.message : `NET_DM ${request}: ${strerror(err.errno)}`,
      hint === undefined ? err.extack : err.extack ? `${err.extack}; ${hint}` : hint,
    );
    this.name = 'NetdmRefusal';
    this.request = request;
    this.kernelText = err.extack;
    this.hint = hint;
  }
}

export class NetdmClient {
  /** The GETFAMILY reply NET_DM was resolved from (dwdump's first pcap record). */
  readonly family: GenlFamily;
  readonly familyId: number;
  /** The `events` multicast group id. */
  readonly groupId: number;

  private readonly transport: NetlinkTransport;
  private readonly ctrl: NetlinkChannel;
  private readonly remedies: NonNullable<NetdmClientOptions['remedies']>;
  private data: NetlinkChannel | null = null;
  private listener: NetdmListener | null = null;
  private joined = false;
  /** The flags of a START the kernel accepted and no STOP has answered yet. */
  private startedWith: StartOptions | null = null;

  // Loss ledger. Every drop on the data socket is an alert lost, except while the kernel is stopped: then it sends no
  // alert (its STOP handler says so), and a drop can only be a drain marker or another session's traffic.
  private frozenAt: number | null = null;
  private excluded = 0;
  private reported = 0;
  private undecodable = 0;
  private unread = 0;
  private unreadReported = 0;
  /** Set while a drain is past its budget: alerts read are counted (LOST_UNREAD) instead of handed to the listener. */
  private counting = false;
  private readonly drainWaiters = new Map<number, (ok: boolean) => void>();

  /**
   * A client over an open control socket and the family it resolved (openNetdmClient() does both); the data socket
   * comes from the same transport at listen(). E_NETDM_MISSING when the family has no `events` group.
   */
  constructor(
    transport: NetlinkTransport,
    control: NetlinkChannel,
    family: GenlFamily,
    options: Pick<NetdmClientOptions, 'remedies'> = {},
  ) {
    const group = family.mcastGroups.get(NET_DM_GROUP_NAME);
    if (group === undefined) throw new DropwatchError('E_NETDM_MISSING', NO_EVENTS_GROUP_MESSAGE);
    this.transport = transport;
    this.ctrl = control;
    this.family = family;
    this.familyId = family.id;
    this.groupId = group;
    this.remedies = options.remedies ?? {};
  }

  /** The flags of the START we sent that no STOP has answered yet, or null. */
  get started(): StartOptions | null {
    return this.startedWith;
  }

  /** The port id of the socket alerts arrive on once listening (for /proc/net/netlink cross-checks), else control's. */
  get portId(): number {
    return (this.data ?? this.ctrl).portId;
  }

  get isClosed(): boolean {
    return this.ctrl.isClosed;
  }

  async getConfig(): Promise<MonitorConfig> {
    const replies = await this.ctrl.request(this.familyId, encodeConfigGet());
    return decodeConfigNew(this.find(replies, NET_DM_CMD_CONFIG_NEW, 'CONFIG_NEW', 'CONFIG_GET'));
  }

  async getStats(): Promise<Omit<Stats, 'lost'>> {
    const replies = await this.ctrl.request(this.familyId, encodeStatsGet());
    return decodeStatsNew(this.find(replies, NET_DM_CMD_STATS_NEW, 'STATS_NEW', 'STATS_GET'));
  }

  async setConfig(change: Partial<MonitorConfig>): Promise<void> {
    await this.send('config', encodeConfig(change));
  }

  async start(flags: StartOptions): Promise<void> {
    this.thaw();
    await this.send('start', encodeStart(flags), flags.hw);
    this.startedWith = { sw: flags.sw, hw: flags.hw };
  }

  /**
   * STOP with the flags we started with (none given and none started: a STOP with no flags, which is how a kernel
   * left monitoring by a killed process is recovered). EAGAIN (not monitoring) counts as done, as in dropwatch.
   * When listening, resolves only after every alert the kernel sent before its ACK has reached the listener, and
   * every loss among them has been reported.
   */
  async stop(flags: StartOptions = this.startedWith ?? NOT_STARTED): Promise<void> {
    // The main thread handles alerts while the ack is on its way: that time comes out of the drain's budget.
    const deadline = Date.now() + DRAIN_MS;
    try {
      await this.send('stop', encodeStop(flags));
    } catch (err) {
      if (!(err instanceof KernelError && err.errno === EAGAIN)) throw err;
    }
    this.startedWith = null;
    // The kernel is stopped: no alert comes after its answer, so the drops counted now are all the alerts lost.
    this.freeze();
    if (this.joined) {
      await this.drain(Math.max(0, deadline - Date.now()));
      this.reportLost();
    }
  }

  /**
   * Last resort when the process is leaving (exit hook, a second Ctrl-C): STOP without asking for an ACK. The kernel
   * acts on it inside sendto(), so it is done when this returns. Never throws.
   */
  stopSync(): void {
    if (this.startedWith === null || this.ctrl.isClosed) return;
    try {
      const msg = encodeNlMsg(
        { type: this.familyId, flags: NLM_F_REQUEST, seq: this.ctrl.nextSeq() },
        encodeStop(this.startedWith),
      );
      this.ctrl.sendRaw(msg);
      this.startedWith = null;
    } catch {
      // the process is leaving; nothing else can be tried
    }
  }

  /**
   * Opens the data socket (receive buffer forced past rmem_max when privileged) with its listener in place, not yet
   * joined: join() before START, so nothing sent after it is missed.
   */
  listen(rcvbuf: number, listener: NetdmListener): void {
    if (this.data) throw new DropwatchError('E_STATE', 'NET_DM client is already listening');
    const data = this.transport.open(NETLINK_GENERIC, {
      rcvbuf,
      noEnobufs: true,
      scratchSize: DATA_SCRATCH,
      timeoutMs: 0,
    });
    this.listener = listener;
    data.onMessages((ms) => this.onData(ms));
    data.onLost((_delta, total) => this.reportLost(total));
    data.onError((err) => {
      if (err.code === 'E_DECODE') this.discard(1);
      else listener.error(err);
    });
    this.data = data;
  }

  /** Joins `events` (CAP_SYS_ADMIN on current kernels) and keeps the process alive while joined. */
  join(): void {
    const data = this.data;
    if (!data) throw new DropwatchError('E_STATE', 'NET_DM client is not listening');
    if (this.joined) return;
    try {
      data.addMembership(this.groupId);
    } catch (err) {
      if (!(err instanceof KernelError)) throw err;
      const what = `joining the NET_DM "${NET_DM_GROUP_NAME}" group`;
      if (err.errno === EPERM)
        throw new DropwatchError('E_PRIVILEGE', `${what} needs CAP_SYS_ADMIN (run as root): ${strerror(EPERM)}`, {
          cause: err,
        });
      throw new KernelError(err.errno, `${what}: ${strerror(err.errno)}`, err.extack);
    }
    this.joined = true;
    data.ref();
  }

  /** Leaves `events` and lets the process exit; if the kernel refuses, alerts keep coming to the listener. */
  leave(): void {
    const data = this.data;
    if (!data || data.isClosed) return;
    if (this.joined) {
      try {
        data.dropMembership(this.groupId);
        this.joined = false;
      } catch {
        // still a member: the listener sees other sessions' alerts until close
      }
    }
    data.unref();
  }

  /**
   * Resolves once every alert queued on the data socket before this call has reached the listener, or been counted: the
   * reply to a CONFIG_GET sent on the data socket queues behind them. Past `timeoutMs` the rest of the queue is only
   * read and counted lost (LOST_UNREAD), which is quick, so a listener slower than the queue cannot stretch a stop
   * and no alert is dropped unsaid. A reply the full queue dropped shows at once in the drop counter (the kernel answers
   * inside sendto()); while the kernel is stopped that can only be our marker, so it is asked again once the loop has
   * read some of the queue. False when no marker came back, even counting, in time.
   */
  async drain(timeoutMs = DRAIN_MS): Promise<boolean> {
    const data = this.data;
    if (!data || data.isClosed) return true;
    const deadline = Date.now() + timeoutMs + COUNT_MS;
    const budget = setTimeout(() => (this.counting = true), timeoutMs);
    try {
      for (;;) {
        const seq = data.nextSeq();
        const before = this.rawLost();
        try {
          data.sendRaw(encodeNlMsg({ type: this.familyId, flags: NLM_F_REQUEST, seq }, encodeConfigGet()));
        } catch {
          return false;
        }
        const left = deadline - Date.now();
        if (this.frozenAt !== null && this.rawLost() !== before) {
          if (left <= 0) return false;
          await new Promise((r) => setTimeout(r, Math.min(5, left)));
          if (data.isClosed) return false;
          continue;
        }
        return await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => settle(false), Math.max(left, 0));
          const settle = (ok: boolean): void => {
            clearTimeout(timer);
            this.drainWaiters.delete(seq);
            // At once, not when the caller resumes: alerts after the marker in the same batch are not the queue's.
            this.counting = false;
            resolve(ok);
          };
          this.drainWaiters.set(seq, settle);
        });
      }
    } finally {
      clearTimeout(budget);
      this.counting = false;
      // One report for the drain, not one per batch counted.
      if (this.unread > this.unreadReported) {
        this.listener?.lost(this.unread - this.unreadReported, LOST_UNREAD);
        this.unreadReported = this.unread;
      }
    }
  }

  /** Messages the listener received but could not use: counted (and reported) as undecodable losses. */
  discard(count: number): void {
    if (count <= 0) return;
    this.undecodable += count;
    this.listener?.lost(count, LOST_UNDECODABLE);
  }

  /** Alerts lost since open, exactly: the kernel's drop counter read now, less the drops that were no alert. */
  lost(): NetdmLost {
    return { socket: this.countable(this.rawLost()), undecodable: this.undecodable, unread: this.unread };
  }

  /** Closes both sockets; pending requests reject with E_STATE. Does not STOP: callers decide (passive runs must not). */
  close(): void {
    this.data?.close();
    this.ctrl.close();
    for (const settle of [...this.drainWaiters.values()]) settle(false);
  }

  private async send(request: NetdmRequest, body: Uint8Array, hw = false): Promise<void> {
    try {
      await this.ctrl.request(this.familyId, body);
    } catch (err) {
      throw this.explain(err, request, hw);
    }
  }

  /** Adds what the user can do to the kernel's refusals that have a known cause. */
  private explain(err: unknown, request: NetdmRequest, hw: boolean): unknown {
    if (!(err instanceof KernelError)) return err;
    let hint: string | undefined;
    if (err.errno === EPERM) hint = `NET_DM ${request} needs CAP_NET_ADMIN (run as root)`;
    else if (err.errno === EAGAIN && request === 'start') hint = ALREADY_MONITORING_HINT;
    else if (err.errno === EBUSY && request === 'config') hint = this.remedies.busy;
    else if (err.errno === EOPNOTSUPP && request === 'start' && hw) hint = this.remedies.hardware;
    return new NetdmRefusal(request, err, hint);
  }

  private onData(messages: ReceivedMessage[]): void {
    const alerts: ReceivedMessage[] = [];
    for (const m of messages) {
      // A drain marker's reply (or the kernel's error for it: either way it queued behind the alerts).
      if (m.group === 0) this.drainWaiters.get(m.header.seq)?.(true);
      else if (m.group === this.groupId && m.header.type === this.familyId) {
        if (this.counting) this.unread++;
        else alerts.push(m);
      }
    }
    if (alerts.length > 0) this.listener?.alerts(alerts);
  }

  /** Drops and cut datagrams on the data socket, the kernel's counter read now. */
  private rawLost(): number {
    if (!this.data) return 0;
    const l = this.data.lost();
    return l.dropped + l.truncated;
  }

  private countable(raw: number): number {
    return Math.min(raw, this.frozenAt ?? raw) - this.excluded;
  }

  /** Tells the listener about alerts lost since the last report (from a batch's totals, or the counter read now). */
  private reportLost(total?: LostCounts): void {
    const raw = total ? total.dropped + total.truncated : this.rawLost();
    const now = this.countable(raw);
    if (now <= this.reported) return;
    const count = now - this.reported;
    this.reported = now;
    this.listener?.lost(count, LOST_SOCKET);
  }

  private freeze(): void {
    this.frozenAt ??= this.rawLost();
  }

  private thaw(): void {
    if (this.frozenAt === null) return;
    this.excluded += this.rawLost() - this.frozenAt;
    this.frozenAt = null;
  }

  private find(replies: NlMessage[], cmd: number, name: string, request: string): NlMessage {
    const reply = replies.find((m) => m.header.type === this.familyId && netdmCommand(m) === cmd);
    if (!reply) throw new DropwatchError('E_DECODE', `NET_DM: no ${name} in the answer to ${request}`);
    return reply;
  }
}

/**
 * Opens the control socket and resolves NET_DM (which can autoload drop_monitor); E_NETDM_MISSING if absent. The
 * transport is the kernel's unless a test brings its own.
 */
export async function openNetdmClient(
  options: NetdmClientOptions,
  transport: NetlinkTransport = netlinkTransport,
): Promise<NetdmClient> {
  const ctrl = transport.open(NETLINK_GENERIC, { timeoutMs: options.timeoutMs ?? 10_000 });
  try {
    let family: GenlFamily;
    try {
      family = await getFamily(ctrl, NET_DM_FAMILY_NAME);
    } catch (err) {
      if (err instanceof GenlFamilyNotFoundError)
        throw new DropwatchError('E_NETDM_MISSING', options.missingMessage, { cause: err });
      throw err;
    }
    return new NetdmClient(transport, ctrl, family, options);
  } catch (err) {
    ctrl.close();
    throw err;
  }
}
