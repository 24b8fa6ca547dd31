/** IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), shared by IPv4 and IPv6 next headers. */
export const IpProtocol = {
  HOP_BY_HOP: 0,
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  IPV6_ROUTING: 43,
  IPV6_FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  IPV6_NO_NEXT: 59,
  IPV6_DEST_OPTS: 60,
} as const;

/** Options shared by the parsers of checksummed formats. */
export interface ChecksumOptions {
  /** Verify checksums (default true). Turn off for frames from a NIC with checksum offload. */
  readonly verifyChecksum?: boolean;
}
