// A scripted NET_DM kernel for tests: drop_monitor as the qemu guest's 6.1 answered, from its captured bytes.
//
// It keeps the one piece of state drop_monitor has that decides its answers (monitoring or not) and answers every
// request with the message the real kernel sent in that state (test/fixtures/netdm), readdressed to the request. Tests
// hook a command to act inside the send (queue alerts on the data socket before STOP's ack, drop a drain marker) or to
// answer otherwise. The client's sockets are the real netlink endpoint over scripted pipes (test/netlink/scripted.ts).
import type { DropwatchError } from '../../src/errors/index.js';
import type { NetdmListener } from '../../src/netdm/client.js';
import type { ReceivedMessage } from '../../src/netlink/socket.js';
import { decodeFamily, GENL_ID_CTRL, type GenlFamily } from '../../src/netlink/nlctrl.js';
import { NLM_F_ACK, type NlMessage } from '../../src/netlink/codec.js';
import {
  NET_DM_CMD_CONFIG,
  NET_DM_CMD_CONFIG_GET,
  NET_DM_CMD_START,
  NET_DM_CMD_STATS_GET,
  NET_DM_CMD_STOP,
  netdmCommand,
} from '../../src/netdm/codec.js';
import { captured } from '../netlink/fixtures.js';
import { answer, ScriptedTransport, type ScriptedPipe } from '../netlink/scripted.js';
import { fixtureBytes, fixtureMessage } from './fixtures.js';

/** What a hook returns: datagrams that replace the kernel's answer, or nothing to let it answer as it would. */
export type NetdmHook = (request: NlMessage, socket: ScriptedPipe) => readonly Uint8Array[] | void;

export class NetdmKernel {
  readonly transport: ScriptedTransport;
  /** NET_DM as the guest's nlctrl reported it (family 32, `events` group 1). */
  readonly family: GenlFamily = decodeFamily(fixtureMessage('ctrl-getfamily-reply.bin'));
  /** Whether NET_DM is registered; false answers GETFAMILY with the ENOENT a kernel without it sends. */
  registered = true;
  monitoring = false;
  /** The captured CONFIG_NEW and STATS_NEW that CONFIG_GET and STATS_GET answer with. */
  configReply = 'config-new-default.bin';
  statsReply = 'stats-new-initial.bin';
  /** Per NET_DM command (NET_DM_CMD_*): runs inside the send, before the kernel's own answer. */
  readonly hooks = new Map<number, NetdmHook>();

  constructor() {
    this.transport = new ScriptedTransport((m, s) => this.handle(m, s));
  }

  get eventsGroup(): number {
    return this.family.mcastGroups.get('events')!;
  }

  /** The kernel's side of the client's control socket (opened first). */
  get control(): ScriptedPipe {
    return this.socket(0, 'control');
  }

  /** The kernel's side of the client's data socket (opened at listen()). */
  get data(): ScriptedPipe {
    return this.socket(1, 'data');
  }

  /** Multicasts a captured alert to every socket in `events`; returns how many it reached. */
  alert(name = 'packet-alert-0.bin'): number {
    let n = 0;
    for (const s of this.transport.sockets) if (!s.isClosed && s.multicast(fixtureBytes(name), this.eventsGroup)) n++;
    return n;
  }

  /** The NET_DM requests (genl commands) the kernel has seen on a socket, in order. */
  commands(socket: ScriptedPipe): number[] {
    return socket.sent.filter((m) => m.header.type === this.family.id).map(netdmCommand);
  }

  private socket(i: number, what: string): ScriptedPipe {
    const s = this.transport.sockets[i];
    if (!s) throw new Error(`the client has not opened its ${what} socket`);
    return s;
  }

  private handle(m: NlMessage, s: ScriptedPipe): readonly Uint8Array[] {
    const reply = (...names: string[]) => names.map((n) => answer(fixtureBytes(n), m, s.portId));
    // netlink_rcv_skb: an ack for success only when asked for, an error always.
    const ack = (name: string) => (m.header.flags & NLM_F_ACK ? reply(name) : []);
    if (m.header.type === GENL_ID_CTRL) {
      if (!this.registered) return [answer(captured('getfamily-netdm-missing').datagrams[0]!, m, s.portId)];
      // The guest's reply came without an ack (none was asked for): the host kernel's ack to a GETFAMILY follows it.
      return [...reply('ctrl-getfamily-reply.bin'), answer(captured('getfamily-nlctrl').datagrams[1]!, m, s.portId)];
    }
    if (m.header.type !== this.family.id) throw new Error(`scripted NET_DM kernel: message type ${m.header.type}`);
    const cmd = netdmCommand(m);
    const hooked = this.hooks.get(cmd)?.(m, s);
    if (hooked) return hooked;
    switch (cmd) {
      case NET_DM_CMD_CONFIG:
        return this.monitoring ? reply('err-config-ebusy-extack-capack.bin') : ack('ack-config-ok-extack.bin');
      case NET_DM_CMD_START:
        if (this.monitoring) return reply('err-start-eagain-extack.bin');
        this.monitoring = true;
        return ack('ack-start-ok.bin');
      case NET_DM_CMD_STOP:
        if (!this.monitoring) return ack('ack-stop-not-running-extack.bin');
        this.monitoring = false;
        return ack('ack-stop-ok.bin');
      case NET_DM_CMD_CONFIG_GET:
        return [...reply(this.configReply), ...ack('ack-config-get.bin')];
      case NET_DM_CMD_STATS_GET:
        // A success ack echoes only the request's nlmsghdr (NLM_F_CAPPED): the captured one after CONFIG_NEW serves.
        return [...reply(this.statsReply), ...ack('ack-config-get.bin')];
      default:
        throw new Error(`scripted NET_DM kernel: command ${cmd}`);
    }
  }
}

/** A NetdmListener that records what reached it, and in what order (`log`). */
export function recordListener(): {
  listener: NetdmListener;
  alerts: ReceivedMessage[];
  lost: [number, string][];
  errors: DropwatchError[];
  log: string[];
} {
  const out = {
    alerts: [] as ReceivedMessage[],
    lost: [] as [number, string][],
    errors: [] as DropwatchError[],
    log: [] as string[],
  };
  const listener: NetdmListener = {
    alerts: (ms) => {
      out.alerts.push(...ms);
      out.log.push(`alerts ${ms.length}`);
    },
    lost: (count, where) => {
      out.lost.push([count, where]);
      out.log.push(`lost ${count} ${where}`);
    },
    error: (err) => {
      out.errors.push(err);
      out.log.push(`error ${err.code}`);
    },
  };
  return { listener, ...out };
}

/** Lets `n` rounds of macrotasks run: scripted pipes deliver on setImmediate, as the receive loop on a wake-up. */
export async function ticks(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Whether a promise has settled yet (it is observed, so a rejection is not left unhandled). */
export function watch(p: Promise<unknown>): { readonly settled: boolean } {
  const state = { settled: false };
  p.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}
