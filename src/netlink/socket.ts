// NetlinkSocket: the netlink endpoint over the addon's socket, configured and bound at open.

import { loadNative, type NativeSocket } from './native.js';
import {
  fromErrno,
  isErrnoError,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_NO_ENOBUFS,
  NETLINK_PKTINFO,
  NetlinkEndpoint,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SOL_NETLINK,
  SOL_SOCKET,
  type DatagramPipe,
} from './endpoint.js';

export * from './endpoint.js';

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

/** The addon's socket as the endpoint's pipe: only the receive callback changes shape. */
function nativePipe(sock: NativeSocket): DatagramPipe {
  return {
    send: (bytes, pid, groups) => sock.send(bytes, pid, groups),
    setsockopt: (level, name, value) => sock.setsockopt(level, name, value),
    getsockopt: (level, name) => sock.getsockopt(level, name),
    drops: () => sock.drops(),
    start: (onBatch) =>
      sock.start((error, datagrams, ends, groups, enobufs, truncated, drops) =>
        onBatch({ datagrams: splitBatch(datagrams, ends), groups, enobufs, truncated, drops, error }),
      ),
    ref: () => sock.ref(),
    unref: () => sock.unref(),
    close: () => sock.close(),
  };
}

/** Sets the socket options `options` asks for, and the ones every socket of ours has (PKTINFO). */
function configure(sock: NativeSocket, options: SocketOptions): void {
  const opt = (level: number, name: number, value: number, what: string, optional = false): void => {
    try {
      sock.setsockopt(level, name, value);
    } catch (err) {
      if (!(optional && isErrnoError(err) && err.code === 'ENOPROTOOPT')) throw fromErrno(err, what);
    }
  };
  if (options.rcvbuf !== undefined) {
    try {
      sock.setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, options.rcvbuf);
    } catch (err) {
      if (!(isErrnoError(err) && err.code === 'EPERM')) throw fromErrno(err, 'SO_RCVBUFFORCE');
      opt(SOL_SOCKET, SO_RCVBUF, options.rcvbuf, 'SO_RCVBUF');
    }
  }
  if (options.extAck ?? true) opt(SOL_NETLINK, NETLINK_EXT_ACK, 1, 'NETLINK_EXT_ACK', true);
  if (options.capAck ?? true) opt(SOL_NETLINK, NETLINK_CAP_ACK, 1, 'NETLINK_CAP_ACK', true);
  if (options.noEnobufs ?? true) opt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1, 'NETLINK_NO_ENOBUFS');
  opt(SOL_NETLINK, NETLINK_PKTINFO, 1, 'NETLINK_PKTINFO');
}

export class NetlinkSocket extends NetlinkEndpoint {
  private readonly sock: NativeSocket;

  private constructor(sock: NativeSocket, protocol: number, portId: number, drops: number, timeoutMs?: number) {
    super(nativePipe(sock), { protocol, portId, drops, timeoutMs });
    this.sock = sock;
  }

  /** Opens, configures and binds a socket and starts its receive loop (which does not keep the process alive by itself). */
  static open(protocol: number, options: SocketOptions = {}): NetlinkSocket {
    const { NetlinkSocket: Native } = loadNative();
    let sock: NativeSocket;
    try {
      sock = new Native(protocol, { scratchSize: options.scratchSize, batchSize: options.batchSize });
    } catch (err) {
      throw fromErrno(err, `netlink socket(${protocol})`);
    }
    try {
      configure(sock, options);
      try {
        sock.bind(options.groups ?? 0);
      } catch (err) {
        throw fromErrno(err, 'netlink bind');
      }
      let portId: number;
      let drops: number;
      try {
        portId = sock.portId();
        drops = sock.drops();
      } catch (err) {
        throw fromErrno(err, 'netlink getsockname');
      }
      return new NetlinkSocket(sock, protocol, portId, drops, options.timeoutMs);
    } catch (err) {
      sock.close();
      throw err;
    }
  }

  get fd(): number {
    return this.sock.fd;
  }
}
