/**
 * Zero-copy views and representations of Ethernet, VLAN, ARP, IPv4, IPv6, ICMP, UDP and TCP.
 * @packageDocumentation
 */
export {};
