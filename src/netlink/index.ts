// Netlink for dropwatch: a socket we own (native addon: survives queue overflow, counts every lost message), a pure
// codec for netlink/generic-netlink messages and attributes, and nlctrl family resolution. NET_DM builds on these:
//   const sock = NetlinkSocket.open(NETLINK_GENERIC, { rcvbuf });   // EXT_ACK, CAP_ACK, NO_ENOBUFS, PKTINFO set
//   const fam = await getFamily(sock, 'NET_DM');                     // GenlFamilyNotFoundError when absent
//   await genlRequest(sock, fam, NET_DM_CMD_START, [nlaFlag(NET_DM_ATTR_SW_DROPS)]);
//   sock.addMembership(fam.mcastGroups.get('events')!); sock.onMessages((ms) => ms.map((m) => decodeGenl(m)));
//   sock.onLost((delta) => ...);                                      // exact kernel drop counts per batch
// NetlinkSocket is the OS-free NetlinkEndpoint (endpoint.ts) over the addon. Clients take a NetlinkTransport
// (netlinkTransport opens NetlinkSockets), so tests run the same endpoint over a scripted kernel's datagram pipe.

export * from './codec.js';
export * from './socket.js';
export * from './transport.js';
export * from './nlctrl.js';
export { loadNative } from './native.js';
