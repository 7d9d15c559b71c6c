// NET_DM (the kernel's drop_monitor generic netlink family): a pure codec, the protocol client, the Backend over it.

export * from './codec.js';
export {
  ALREADY_MONITORING_HINT,
  LOST_SOCKET,
  LOST_UNDECODABLE,
  LOST_UNREAD,
  NetdmClient,
  NetdmRefusal,
  NO_EVENTS_GROUP_MESSAGE,
  openNetdmClient,
  type NetdmClientOptions,
  type NetdmListener,
  type NetdmLost,
  type NetdmRequest,
} from './client.js';
export { DEFAULT_RCVBUF, NETDM_MISSING_MESSAGE, NetdmBackend, openNetdmBackend, type NetdmOptions } from './backend.js';
