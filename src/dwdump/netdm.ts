// dwdump's two NET_DM sockets, as Debian's dwdump has them: a control socket for CONFIG/START/STOP/CONFIG_GET/
// STATS_GET, and a data socket joined to the `events` group whose receive buffer only alerts fill. Kept apart so a
// queue full of alerts can never drop the ACK of the STOP we send on the way out.
//
// NetdmBackend (src/netdm) serves dropwatch: it decodes alerts into events and does not hand out the raw message
// bytes or the GETFAMILY reply a pcap needs, so this module drives the same codec over src/netlink directly.
import { DropwatchError, KernelError, strerror } from '../errors/index.js';
import { encodeNlMsg, NLM_F_REQUEST, type NlMessage } from '../netlink/codec.js';
import { GenlFamilyNotFoundError, getFamily, type GenlFamily } from '../netlink/nlctrl.js';
import { NETLINK_GENERIC, NetlinkSocket, type LostCounts, type ReceivedMessage } from '../netlink/socket.js';
import {
  ALREADY_MONITORING_HINT,
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
} from '../netdm/index.js';
import type { MonitorConfig, Stats } from '../backend/types.js';
import type { DwdumpOrigin } from './options.js';

const EPERM = 1;
const EAGAIN = 11;
const EBUSY = 16;
const EOPNOTSUPP = 95;

/** Largest NET_DM message: a payload attribute near 64 KiB plus the other attributes; none is ever cut. */
const DATA_SCRATCH = 128 * 1024;
const CONTROL_TIMEOUT_MS = 5_000;

export const FAMILY_MISSING_MESSAGE =
  'Failed to resolve ID of "NET_DM" family: this kernel has no drop monitor (CONFIG_NET_DROP_MONITOR / drop_monitor.ko)';

const flags = (origin: DwdumpOrigin): { sw: boolean; hw: boolean } => ({
  sw: origin !== 'hw',
  hw: origin !== 'sw',
});

function kernelLine(err: KernelError): string {
  return err.extack ? `${strerror(err.errno)} (${err.extack})` : strerror(err.errno);
}

/** One line that says what failed and, for refusals with a known cause, what to do. */
function explain(err: unknown, what: string, capability = 'CAP_NET_ADMIN'): unknown {
  if (!(err instanceof KernelError)) return err;
  if (err.errno === EPERM)
    return new DropwatchError('E_PRIVILEGE', `${what}: ${strerror(EPERM)} (needs ${capability}: run as root)`, {
      cause: err,
    });
  let hint = '';
  if (err.errno === EAGAIN && what.includes('start')) hint = `; ${ALREADY_MONITORING_HINT}`;
  if (err.errno === EBUSY && what.includes('configure'))
    hint = '; another process is monitoring: dwdump -p listens without reconfiguring';
  if (err.errno === EOPNOTSUPP && what.includes('start')) hint = '; hardware drops need a devlink device (try -o sw)';
  return new KernelError(err.errno, `${what}: ${kernelLine(err)}${hint}`, err.extack);
}

export class DwdumpNetdm {
  readonly family: GenlFamily;
  readonly groupId: number;
  private readonly ctrl: NetlinkSocket;
  private data: NetlinkSocket | null = null;
  /** The origin flags of a START the kernel accepted and no STOP has answered yet. */
  private started: DwdumpOrigin | null = null;

  private constructor(ctrl: NetlinkSocket, family: GenlFamily, groupId: number) {
    this.ctrl = ctrl;
    this.family = family;
    this.groupId = groupId;
  }

  /** Opens the control socket and resolves NET_DM (which can autoload drop_monitor); E_NETDM_MISSING if absent. */
  static async open(): Promise<DwdumpNetdm> {
    const ctrl = NetlinkSocket.open(NETLINK_GENERIC, { timeoutMs: CONTROL_TIMEOUT_MS });
    try {
      let family: GenlFamily;
      try {
        family = await getFamily(ctrl, NET_DM_FAMILY_NAME);
      } catch (err) {
        if (err instanceof GenlFamilyNotFoundError)
          throw new DropwatchError('E_NETDM_MISSING', FAMILY_MISSING_MESSAGE, { cause: err });
        throw err;
      }
      const group = family.mcastGroups.get(NET_DM_GROUP_NAME);
      if (group === undefined)
        throw new DropwatchError(
          'E_NETDM_MISSING',
          `NET_DM has no "${NET_DM_GROUP_NAME}" multicast group on this kernel`,
        );
      return new DwdumpNetdm(ctrl, family, group);
    } catch (err) {
      ctrl.close();
      throw err;
    }
  }

  get isStarted(): boolean {
    return this.started !== null;
  }

  async getConfig(): Promise<MonitorConfig> {
    const replies = await this.ctrl.request(this.family.id, encodeConfigGet());
    return decodeConfigNew(this.find(replies, NET_DM_CMD_CONFIG_NEW, 'CONFIG_NEW', 'CONFIG_GET'));
  }

  async getStats(): Promise<Omit<Stats, 'lost'>> {
    const replies = await this.ctrl.request(this.family.id, encodeStatsGet());
    return decodeStatsNew(this.find(replies, NET_DM_CMD_STATS_NEW, 'STATS_NEW', 'STATS_GET'));
  }

  /** CONFIG as dwdump sends it: packet mode with the truncation and queue lengths, all three every time. */
  async configurePacketMode(truncLen: number, queueLen: number): Promise<void> {
    try {
      await this.ctrl.request(this.family.id, encodeConfig({ alertMode: 'packet', truncLen, queueLen }));
    } catch (err) {
      throw explain(err, 'Failed to configure drop monitor kernel module');
    }
  }

  async start(origin: DwdumpOrigin): Promise<void> {
    try {
      await this.ctrl.request(this.family.id, encodeStart(flags(origin)));
    } catch (err) {
      throw explain(err, 'Failed to start monitoring');
    }
    this.started = origin;
  }

  /** STOP with the origin flags; EAGAIN (not monitoring, on kernels that say so) counts as done, as in dropwatch. */
  async stop(origin: DwdumpOrigin): Promise<void> {
    try {
      await this.ctrl.request(this.family.id, encodeStop(flags(origin)));
    } catch (err) {
      if (!(err instanceof KernelError && err.errno === EAGAIN)) throw explain(err, 'Failed to stop monitoring');
    }
    this.started = null;
  }

  /** Stops what we started, if anything. */
  async stopStarted(): Promise<void> {
    if (this.started !== null) await this.stop(this.started);
  }

  /**
   * Last resort when the process is leaving (exit hook, a second Ctrl-C): STOP without waiting for an ACK. The kernel
   * acts on it inside sendto(), so it is done when this returns. Never throws.
   */
  stopSync(): void {
    if (this.started === null || this.ctrl.isClosed) return;
    try {
      const msg = encodeNlMsg(
        { type: this.family.id, flags: NLM_F_REQUEST, seq: this.ctrl.nextSeq() },
        encodeStop(flags(this.started)),
      );
      this.ctrl.sendRaw(msg);
      this.started = null;
    } catch {
      // the process is leaving; nothing else can be tried
    }
  }

  /**
   * Opens the data socket (receive buffer forced past rmem_max when privileged), installs the listeners, and joins
   * `events` (CAP_SYS_ADMIN on current kernels). Listeners are in place before the join, so nothing is missed.
   */
  listen(
    rcvbuf: number,
    onAlerts: (messages: ReceivedMessage[]) => void,
    onLost: (delta: LostCounts) => void,
    onError: (err: DropwatchError) => void,
  ): void {
    if (this.data) throw new DropwatchError('E_STATE', 'already listening');
    const data = NetlinkSocket.open(NETLINK_GENERIC, {
      rcvbuf,
      noEnobufs: true,
      scratchSize: DATA_SCRATCH,
      timeoutMs: CONTROL_TIMEOUT_MS,
    });
    data.onMessages((ms) => {
      const alerts = ms.filter((m) => m.header.type === this.family.id && m.group === this.groupId);
      if (alerts.length > 0) onAlerts(alerts);
    });
    data.onLost((delta) => onLost(delta));
    data.onError(onError);
    try {
      data.addMembership(this.groupId);
    } catch (err) {
      data.close();
      throw explain(err, `Failed to join the NET_DM "${NET_DM_GROUP_NAME}" group`, 'CAP_SYS_ADMIN');
    }
    data.ref();
    this.data = data;
  }

  /**
   * Resolves once every alert queued on the data socket before this call has been delivered: a CONFIG_GET sent on
   * the data socket is answered behind them in the same receive queue. False when the reply did not come (the queue
   * was full and the kernel dropped it, which the loss count then shows).
   */
  async drain(timeoutMs = 1_000): Promise<boolean> {
    if (!this.data || this.data.isClosed) return true;
    try {
      await this.data.request(this.family.id, encodeConfigGet(), { timeoutMs });
      return true;
    } catch {
      return false;
    }
  }

  /** Exact losses on the data socket so far (kernel drop counter + cut datagrams + undecodable ones). */
  lost(): LostCounts {
    return this.data ? this.data.lost() : { dropped: 0, enobufs: 0, truncated: 0 };
  }

  /** Closes both sockets. Does not STOP: callers decide (passive runs must not). */
  close(): void {
    this.data?.close();
    this.ctrl.close();
  }

  private find(replies: NlMessage[], cmd: number, name: string, request: string): NlMessage {
    const reply = replies.find((m) => m.header.type === this.family.id && netdmCommand(m) === cmd);
    if (!reply) throw new DropwatchError('E_DECODE', `NET_DM: no ${name} in the answer to ${request}`);
    return reply;
  }
}
