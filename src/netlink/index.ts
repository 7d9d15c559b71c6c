// Netlink for dropwatch: a socket we own (native addon: survives queue overflow, counts every lost message), a pure
// codec for netlink/generic-netlink messages and attributes, and nlctrl family resolution. NET_DM builds on these.

export * from './codec.js';
export * from './socket.js';
export * from './nlctrl.js';
export { loadNative, isNativeError, type NativeError } from './native.js';
