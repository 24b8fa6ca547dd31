/** Capabilities the policy knows by name. Rules may name others; these have meaning built into the server. */
export const CAPABILITIES = {
  /** Receive or send on ports below 1024 (checked by the server for every rule, in addition to the rule). */
  BIND_PRIVILEGED: 'bind-privileged',
  /** Receive broadcast frames. */
  RECEIVE_BROADCAST: 'receive-broadcast',
  /** Raw ethertypes (not IPv4/IPv6/ARP). */
  RAW_ETHERTYPE: 'raw-ethertype',
  /** Monitor all traffic on a driver. */
  MONITOR_ALL: 'monitor-all',
  /** Send with any source address. */
  SEND_ANY_SOURCE: 'send-any-source',
} as const;

/** Ports below this need {@link CAPABILITIES.BIND_PRIVILEGED}. */
export const PRIVILEGED_PORT_LIMIT = 1024;
