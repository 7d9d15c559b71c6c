// NetdmBackend: the Backend contract over the kernel's NET_DM generic netlink family (drop_monitor).

import type {
  Backend,
  BackendCapabilities,
  BackendEvent,
  EventListener,
  LostCount,
  MonitorConfig,
  StartOptions,
  Stats,
  SummaryEntry,
} from '../backend/types.js';
import { DropwatchError, KernelError, strerror } from '../errors/index.js';
import { encodeNlMsg, NLM_F_REQUEST } from '../netlink/codec.js';
import { GenlFamilyNotFoundError, getFamily } from '../netlink/nlctrl.js';
import { NETLINK_GENERIC, NetlinkSocket, type LostCounts, type ReceivedMessage } from '../netlink/socket.js';
import {
  decodeConfigNew,
  decodeEvent,
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

export const NETDM_MISSING_MESSAGE = "Unable to find NET_DM family, dropwatch can't work";
/** Where socket overruns are reported (lost events and getStats().lost). */
export const LOST_SOCKET = 'netlink socket';
/** Alerts that reached us but did not decode: lost to the user all the same. */
export const LOST_UNDECODABLE = 'undecodable NET_DM messages';

/** Appended to the kernel's text when START answers EAGAIN. */
export const ALREADY_MONITORING_HINT =
  'NET_DM is already monitoring for another process, or for one killed while monitoring; ' +
  'a stop from any process ends it (the `stop` command of Debian dropwatch, for one)';

export interface NetdmOptions {
  /**
   * Receive buffer in bytes. PACKET_ALERTs can approach 64 KiB each (about 130 KiB of kernel accounting), and a burst
   * of a full per-CPU queue (1000 by default) arrives at once; default 16 MiB, forced past rmem_max when root.
   */
  rcvbuf?: number;
  /** Per-request timeout in ms (default 10 s). */
  timeoutMs?: number;
  /** One-line notices for the user (e.g. the receive loop failed). */
  onWarning?: (line: string) => void;
}

export const DEFAULT_RCVBUF = 16 * 1024 * 1024;
// Larger than any NET_DM message (the kernel caps them near 64 KiB), so none is ever cut.
const SCRATCH = 128 * 1024;

function withHint(extack: string | undefined, hint: string): string {
  return extack ? `${extack}; ${hint}` : hint;
}

/** Adds what the user can do to the kernel's refusals that have a known cause. */
function explain(err: unknown, what: 'config' | 'start' | 'stop'): unknown {
  if (!(err instanceof KernelError)) return err;
  if (err.errno === EPERM)
    return new KernelError(
      EPERM,
      `NET_DM ${what}: ${strerror(EPERM)}`,
      withHint(err.extack, `NET_DM ${what} needs CAP_NET_ADMIN (run as root)`),
    );
  if (err.errno === EAGAIN && what === 'start')
    return new KernelError(EAGAIN, `NET_DM start: ${strerror(EAGAIN)}`, withHint(err.extack, ALREADY_MONITORING_HINT));
  return err;
}

// process 'exit' runs only synchronous code: one hook for all instances sends STOP for each still monitoring.
const monitoringInstances = new Set<NetdmBackend>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const b of monitoringInstances) b.stopSync();
  });
}

export class NetdmBackend implements Backend {
  readonly name = 'netdm' as const;
  readonly capabilities: BackendCapabilities = { packetMode: true, trunc: true, queue: true, hw: true };
  /** The NET_DM family id and `events` group id nlctrl gave us. */
  readonly familyId: number;
  readonly groupId: number;

  private readonly sock: NetlinkSocket;
  private readonly warn: (line: string) => void;
  private listener: EventListener | null = null;
  private monitoring: StartOptions | null = null;
  private joined = false;
  private closed = false;
  private closing: Promise<void> | null = null;
  private undecodable = 0;

  private constructor(sock: NetlinkSocket, familyId: number, groupId: number, warn: (line: string) => void) {
    this.sock = sock;
    this.familyId = familyId;
    this.groupId = groupId;
    this.warn = warn;
    sock.onMessages((msgs) => this.onMessages(msgs));
    sock.onLost((delta) => this.onLost(delta));
    sock.onError((err) => {
      if (err.code === 'E_DECODE') this.lostUndecodable(1);
      else this.warn(`NET_DM socket: ${err.message}`);
    });
  }

  /**
   * Opens a generic netlink socket (extended ACKs on), resolves NET_DM and its `events` group (which can autoload
   * drop_monitor). Rejects with E_NETDM_MISSING when the kernel has no such family.
   */
  static async open(options: NetdmOptions = {}): Promise<NetdmBackend> {
    const sock = NetlinkSocket.open(NETLINK_GENERIC, {
      rcvbuf: options.rcvbuf ?? DEFAULT_RCVBUF,
      extAck: true,
      capAck: true,
      noEnobufs: true,
      scratchSize: SCRATCH,
      timeoutMs: options.timeoutMs ?? 10_000,
    });
    try {
      let family;
      try {
        family = await getFamily(sock, NET_DM_FAMILY_NAME);
      } catch (err) {
        if (err instanceof GenlFamilyNotFoundError)
          throw new DropwatchError('E_NETDM_MISSING', NETDM_MISSING_MESSAGE, { cause: err });
        throw err;
      }
      const group = family.mcastGroups.get(NET_DM_GROUP_NAME);
      if (group === undefined)
        throw new DropwatchError(
          'E_NETDM_MISSING',
          `${NETDM_MISSING_MESSAGE} (family ${NET_DM_FAMILY_NAME} has no "${NET_DM_GROUP_NAME}" group)`,
        );
      return new NetdmBackend(sock, family.id, group, options.onWarning ?? (() => undefined));
    } catch (err) {
      sock.close();
      throw err;
    }
  }

  onEvent(listener: EventListener): void {
    this.listener = listener;
  }

  /** Whether this backend has started kernel monitoring that it has not stopped yet. */
  get isMonitoring(): boolean {
    return this.monitoring !== null;
  }

  /** The socket's port id (for /proc/net/netlink cross-checks in tests). */
  get portId(): number {
    return this.sock.portId;
  }

  async start(options: StartOptions): Promise<void> {
    this.checkOpen();
    if (this.monitoring) throw new DropwatchError('E_STATE', 'NET_DM monitoring is already active');
    // Join first: a START we cannot listen to would leave the kernel monitoring for nobody.
    if (!this.joined) {
      try {
        this.sock.addMembership(this.groupId);
      } catch (err) {
        if (err instanceof KernelError && err.errno === EPERM)
          throw new DropwatchError(
            'E_PRIVILEGE',
            `joining the NET_DM "${NET_DM_GROUP_NAME}" group needs CAP_SYS_ADMIN (run as root): ${strerror(EPERM)}`,
            { cause: err },
          );
        throw err;
      }
      this.joined = true;
    }
    this.sock.ref();
    try {
      await this.sock.request(this.familyId, encodeStart(options));
    } catch (err) {
      this.leave();
      throw explain(err, 'start');
    }
    this.monitoring = { sw: options.sw, hw: options.hw };
    monitoringInstances.add(this);
    installExitHook();
  }

  /**
   * Sends STOP (also when this backend did not start monitoring: that is how a kernel left monitoring by a killed
   * process is recovered). EAGAIN counts as success, as in dropwatch. Alerts queued before the kernel's ACK are
   * delivered before this resolves: they precede it on the socket.
   */
  async stop(): Promise<void> {
    this.checkOpen();
    await this.sendStop();
  }

  private async sendStop(): Promise<void> {
    const flags = this.monitoring ?? { sw: false, hw: false };
    try {
      await this.sock.request(this.familyId, encodeStop(flags));
    } catch (err) {
      if (!(err instanceof KernelError && err.errno === EAGAIN)) throw explain(err, 'stop');
    }
    this.monitoring = null;
    monitoringInstances.delete(this);
    this.leave();
  }

  async setConfig(change: Partial<MonitorConfig>): Promise<void> {
    this.checkOpen();
    try {
      await this.sock.request(this.familyId, encodeConfig(change));
    } catch (err) {
      throw explain(err, 'config');
    }
  }

  async getConfig(): Promise<MonitorConfig> {
    this.checkOpen();
    const replies = await this.sock.request(this.familyId, encodeConfigGet());
    const reply = replies.find((m) => m.header.type === this.familyId && netdmCommand(m) === NET_DM_CMD_CONFIG_NEW);
    if (!reply) throw new DropwatchError('E_DECODE', 'NET_DM: no CONFIG_NEW in the answer to CONFIG_GET');
    return decodeConfigNew(reply);
  }

  async getStats(): Promise<Stats> {
    this.checkOpen();
    const replies = await this.sock.request(this.familyId, encodeStatsGet());
    const reply = replies.find((m) => m.header.type === this.familyId && netdmCommand(m) === NET_DM_CMD_STATS_NEW);
    if (!reply) throw new DropwatchError('E_DECODE', 'NET_DM: no STATS_NEW in the answer to STATS_GET');
    return { ...decodeStatsNew(reply), lost: this.lost() };
  }

  /** Everything lost between the kernel and us since open. */
  lost(): LostCount[] {
    const l = this.sock.lost();
    const out: LostCount[] = [{ where: LOST_SOCKET, count: l.dropped + l.truncated }];
    if (this.undecodable > 0) out.push({ where: LOST_UNDECODABLE, count: this.undecodable });
    return out;
  }

  /** Stops monitoring if we started it (so the kernel is never left monitoring), then closes the socket. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      try {
        if (this.monitoring && !this.sock.isClosed) await this.sendStop();
      } catch (err) {
        // The socket is going away regardless; a last synchronous STOP is all that is left to try.
        this.stopSync();
        this.warn(`NET_DM stop on close failed: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        monitoringInstances.delete(this);
        this.monitoring = null;
        this.closed = true;
        this.sock.close();
      }
    })();
    return this.closing;
  }

  /**
   * Best effort for process 'exit': a STOP without NLM_F_ACK, sent synchronously (the kernel acts on it inside
   * sendto), when this backend is still monitoring. Never throws.
   */
  stopSync(): void {
    if (!this.monitoring || this.sock.isClosed) return;
    try {
      const msg = encodeNlMsg(
        { type: this.familyId, flags: NLM_F_REQUEST, seq: this.sock.nextSeq() },
        encodeStop(this.monitoring),
      );
      this.sock.sendRaw(msg);
      this.monitoring = null;
      monitoringInstances.delete(this);
    } catch {
      // nothing more can be done while the process exits
    }
  }

  private leave(): void {
    if (this.joined && !this.sock.isClosed) {
      try {
        this.sock.dropMembership(this.groupId);
        this.joined = false;
      } catch {
        // still a member: events from other sessions are ignored while we do not monitor
      }
    }
    if (!this.sock.isClosed) this.sock.unref();
  }

  private checkOpen(): void {
    if (this.closed || this.closing) throw new DropwatchError('E_STATE', 'NET_DM backend is closed');
  }

  private emit(event: BackendEvent): void {
    this.listener?.(event);
  }

  private onMessages(msgs: ReceivedMessage[]): void {
    // One summary event per receive batch, however many ALERTs (one per CPU per interval) it held.
    let summary: SummaryEntry[] | null = null;
    let bad = 0;
    for (const m of msgs) {
      if (m.header.type !== this.familyId || m.group !== this.groupId) continue;
      let event: BackendEvent | null;
      try {
        event = decodeEvent(m);
      } catch {
        bad++;
        continue;
      }
      if (event === null) continue;
      if (event.kind === 'summary') {
        if (summary) summary.push(...event.entries);
        else summary = event.entries;
      } else {
        if (summary) {
          this.emit({ kind: 'summary', entries: summary });
          summary = null;
        }
        this.emit(event);
      }
    }
    if (summary) this.emit({ kind: 'summary', entries: summary });
    if (bad > 0) this.lostUndecodable(bad);
  }

  private onLost(delta: LostCounts): void {
    const count = delta.dropped + delta.truncated;
    if (count > 0) this.emit({ kind: 'lost', count, where: LOST_SOCKET });
  }

  private lostUndecodable(count: number): void {
    this.undecodable += count;
    this.emit({ kind: 'lost', count, where: LOST_UNDECODABLE });
  }
}

/** The factory the CLI calls. */
export function openNetdmBackend(options: NetdmOptions = {}): Promise<NetdmBackend> {
  return NetdmBackend.open(options);
}
