// NET_DM (the kernel's drop_monitor generic netlink family): a pure codec and the Backend that drives it.

export * from './codec.js';
export {
  ALREADY_MONITORING_HINT,
  DEFAULT_RCVBUF,
  LOST_SOCKET,
  LOST_UNDECODABLE,
  NETDM_MISSING_MESSAGE,
  NetdmBackend,
  openNetdmBackend,
  type NetdmOptions,
} from './backend.js';
