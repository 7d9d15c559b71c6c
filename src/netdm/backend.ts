// NetdmBackend: the Backend contract over the kernel's NET_DM generic netlink family (drop_monitor).

import { NETDM_OFFER } from './source.js';
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
import { DropwatchError } from '../errors/index.js';
import type { ReceivedMessage } from '../netlink/socket.js';
import { LOST_SOCKET, LOST_UNDECODABLE, LOST_UNREAD, NetdmClient, openNetdmClient } from './client.js';
import { decodeEvent } from './codec.js';
import { decodeFlow } from '../packet/index.js';

export const NETDM_MISSING_MESSAGE = "Unable to find NET_DM family, dropwatch can't work";

export interface NetdmOptions {
  /**
   * Receive buffer in bytes of the socket alerts arrive on. PACKET_ALERTs can approach 64 KiB each (about 130 KiB of
   * kernel accounting), and a burst of a full per-CPU queue (1000 by default) arrives at once; default 16 MiB, forced
   * past rmem_max when root.
   */
  rcvbuf?: number;
  /** Per-request timeout in ms (default 10 s). */
  timeoutMs?: number;
  /** One-line notices for the user (e.g. the receive loop failed). */
  onWarning?: (line: string) => void;
}

export const DEFAULT_RCVBUF = 16 * 1024 * 1024;

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
  readonly capabilities: BackendCapabilities = { ...NETDM_OFFER, reasons: null, kernelFilter: null };
  /** The NET_DM family id and `events` group id nlctrl gave us. */
  readonly familyId: number;
  readonly groupId: number;

  private readonly client: NetdmClient;
  private readonly warn: (line: string) => void;
  private listener: EventListener | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;

  private constructor(client: NetdmClient, warn: (line: string) => void) {
    this.client = client;
    this.familyId = client.familyId;
    this.groupId = client.groupId;
    this.warn = warn;
  }

  /**
   * Resolves NET_DM and its `events` group (which can autoload drop_monitor) and opens the socket alerts will arrive
   * on. Rejects with E_NETDM_MISSING when the kernel has no such family.
   */
  static async open(options: NetdmOptions = {}): Promise<NetdmBackend> {
    const client = await openNetdmClient({ missingMessage: NETDM_MISSING_MESSAGE, timeoutMs: options.timeoutMs });
    try {
      return NetdmBackend.over(client, options);
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** A backend over an open client, listening on its data socket (the replay benchmark and tests bring their own). */
  static over(client: NetdmClient, options: Pick<NetdmOptions, 'rcvbuf' | 'onWarning'> = {}): NetdmBackend {
    const backend = new NetdmBackend(client, options.onWarning ?? (() => undefined));
    client.listen(options.rcvbuf ?? DEFAULT_RCVBUF, {
      alerts: (messages) => backend.onAlerts(messages),
      lost: (count, where) => backend.emit({ kind: 'lost', count, where }),
      error: (err) => backend.warn(`NET_DM socket: ${err.message}`),
    });
    return backend;
  }

  onEvent(listener: EventListener): void {
    this.listener = listener;
  }

  /** Whether this backend has started kernel monitoring that it has not stopped yet. */
  get isMonitoring(): boolean {
    return this.client.started !== null;
  }

  /** The port id of the socket alerts arrive on (for /proc/net/netlink cross-checks in tests). */
  get portId(): number {
    return this.client.portId;
  }

  async start(options: StartOptions): Promise<void> {
    this.checkOpen();
    if (this.isMonitoring) throw new DropwatchError('E_STATE', 'NET_DM monitoring is already active');
    // Join first: a START we cannot listen to would leave the kernel monitoring for nobody.
    this.client.join();
    try {
      await this.client.start(options);
    } catch (err) {
      this.client.leave();
      throw err;
    }
    monitoringInstances.add(this);
    installExitHook();
  }

  /**
   * Sends STOP (also when this backend did not start monitoring: that is how a kernel left monitoring by a killed
   * process is recovered). EAGAIN counts as success, as in dropwatch. Alerts the kernel sent before its ACK, and the
   * count of those lost, are delivered before this resolves.
   */
  async stop(): Promise<void> {
    this.checkOpen();
    await this.sendStop();
  }

  private async sendStop(): Promise<void> {
    await this.client.stop();
    monitoringInstances.delete(this);
    this.client.leave();
  }

  async setConfig(change: Partial<MonitorConfig>): Promise<void> {
    this.checkOpen();
    await this.client.setConfig(change);
  }

  async getConfig(): Promise<MonitorConfig> {
    this.checkOpen();
    return this.client.getConfig();
  }

  async getStats(): Promise<Stats> {
    this.checkOpen();
    return { ...(await this.client.getStats()), lost: this.lost() };
  }

  /** Everything lost between the kernel and us since open. */
  lost(): LostCount[] {
    const l = this.client.lost();
    const out: LostCount[] = [{ where: LOST_SOCKET, count: l.socket }];
    if (l.undecodable > 0) out.push({ where: LOST_UNDECODABLE, count: l.undecodable });
    if (l.unread > 0) out.push({ where: LOST_UNREAD, count: l.unread });
    return out;
  }

  /** Stops monitoring if we started it (so the kernel is never left monitoring), then closes the sockets. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      try {
        if (this.isMonitoring && !this.client.isClosed) await this.sendStop();
      } catch (err) {
        // The sockets are going away regardless; a last synchronous STOP is all that is left to try.
        this.stopSync();
        this.warn(`NET_DM stop on close failed: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        monitoringInstances.delete(this);
        this.closed = true;
        this.client.close();
      }
    })();
    return this.closing;
  }

  /**
   * Best effort for process 'exit': a STOP without NLM_F_ACK, sent synchronously (the kernel acts on it inside
   * sendto), when this backend is still monitoring. Never throws.
   */
  stopSync(): void {
    this.client.stopSync();
    if (!this.isMonitoring) monitoringInstances.delete(this);
  }

  private checkOpen(): void {
    if (this.closed || this.closing) throw new DropwatchError('E_STATE', 'NET_DM backend is closed');
  }

  private emit(event: BackendEvent): void {
    this.listener?.(event);
  }

  private onAlerts(msgs: ReceivedMessage[]): void {
    // One summary event per receive batch, however many ALERTs (one per CPU per interval) it held.
    let summary: SummaryEntry[] | null = null;
    let bad = 0;
    for (const m of msgs) {
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
        if (event.kind === 'packet' && event.packet.payload !== undefined)
          event.packet.flow = decodeFlow(event.packet.payload, event.packet.protocol);
        this.emit(event);
      }
    }
    if (summary) this.emit({ kind: 'summary', entries: summary });
    this.client.discard(bad);
  }
}

/** The factory the CLI calls. */
export function openNetdmBackend(options: NetdmOptions = {}): Promise<NetdmBackend> {
  return NetdmBackend.open(options);
}
