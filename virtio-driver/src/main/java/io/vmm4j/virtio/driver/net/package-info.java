/**
 * A tiny guest network stack for driving virtio-net from Java: Ethernet II, ARP (RFC 826),
 * IPv4 (RFC 791), ICMP echo (RFC 792) and UDP (RFC 768), with the Internet checksum of RFC 1071.
 * {@link io.vmm4j.virtio.driver.net.GuestNetStack} is the entry point; the per-protocol records
 * encode into caller buffers and decode with full validation.
 */
package io.vmm4j.virtio.driver.net;
