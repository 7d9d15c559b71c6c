// Netlink for dropwatch: a socket we own (native addon: survives queue overflow, counts every lost message), a pure
// codec for netlink/generic-netlink messages and attributes, and nlctrl family resolution. NET_DM builds on these:
//   const sock = NetlinkSocket.open(NETLINK_GENERIC, { rcvbuf });   // EXT_ACK, CAP_ACK, NO_ENOBUFS, PKTINFO set
//   const fam = await getFamily(sock, 'NET_DM');                     // GenlFamilyNotFoundError when absent
//   await genlRequest(sock, fam, NET_DM_CMD_START, [nlaFlag(NET_DM_ATTR_SW_DROPS)]);
//   sock.addMembership(fam.mcastGroups.get('events')!); sock.onMessages((ms) => ms.map((m) => decodeGenl(m)));
//   sock.onLost((delta) => ...);                                      // exact kernel drop counts per batch
// Clients take a NetlinkTransport (netlinkTransport opens NetlinkSockets) so tests can script the kernel's side.

export * from './codec.js';
export * from './socket.js';
export * from './transport.js';
export * from './nlctrl.js';
export { loadNative, isNativeError, type NativeError } from './native.js';
