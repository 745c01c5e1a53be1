package io.vmm4j.virtio.driver.net;

/** Why the stack dropped a frame (or, for the last two, something it would otherwise have kept). */
public enum DropReason {
    /** Shorter than the 14-byte Ethernet II header. */
    ETHERNET_TRUNCATED,
    /** Longer than the 14-byte header plus the MTU. */
    ETHERNET_TOO_LONG,
    /** Destination neither this stack's MAC nor broadcast. */
    ETHERNET_NOT_FOR_US,
    /** Source is a group address or this stack's own MAC (a loop or a forgery). */
    ETHERNET_BAD_SOURCE,
    /** An EtherType other than ARP (0x0806) and IPv4 (0x0800), VLAN tags included. */
    ETHERTYPE_UNSUPPORTED,

    /** Fewer bytes than the 28 of an Ethernet/IPv4 ARP packet. */
    ARP_TRUNCATED,
    /** Hardware type not Ethernet (1) or hardware length not 6 (RFC 826). */
    ARP_BAD_HARDWARE,
    /** Protocol type not IPv4 (0x0800) or protocol length not 4 (RFC 826). */
    ARP_BAD_PROTOCOL,
    /** Operation neither request (1) nor reply (2). */
    ARP_BAD_OPERATION,
    /** Sender hardware address is a group address or this stack's own MAC. */
    ARP_BAD_SENDER,
    /** Well-formed, but the target protocol address is not this stack's (it may still refresh the cache). */
    ARP_NOT_FOR_US,

    /** Fewer than 20 bytes of IPv4 header. */
    IPV4_TRUNCATED,
    /** Version field not 4. */
    IPV4_BAD_VERSION,
    /** IHL below 5 words, or a header longer than the bytes present. */
    IPV4_BAD_HEADER_LENGTH,
    /** Header checksum does not verify (RFC 791, RFC 1071). */
    IPV4_BAD_CHECKSUM,
    /** Total length below the header length or beyond the frame. */
    IPV4_BAD_TOTAL_LENGTH,
    /** A fragment (MF set or a non-zero offset); this stack does not reassemble. */
    IPV4_FRAGMENT,
    /** Source is multicast, reserved or broadcast (RFC 1122 §3.2.1.3). */
    IPV4_BAD_SOURCE,
    /** Destination neither this stack's address nor limited broadcast. */
    IPV4_NOT_FOR_US,
    /** A protocol other than ICMP (1) and UDP (17). */
    IPV4_PROTOCOL_UNSUPPORTED,

    /** Fewer than the 8 bytes of an ICMP header. */
    ICMP_TRUNCATED,
    /** ICMP checksum over the whole message does not verify (RFC 792). */
    ICMP_BAD_CHECKSUM,
    /** An ICMP type other than echo request (8) and echo reply (0). */
    ICMP_TYPE_UNSUPPORTED,
    /** Echo request to a broadcast address, which a host may ignore (RFC 1122 §3.2.2.6). */
    ICMP_ECHO_TO_BROADCAST,
    /** Echo reply matching no ping in flight (a duplicate, late, or for someone else). */
    ICMP_ECHO_REPLY_UNMATCHED,
    /** Echo reply whose data differs from what was sent (RFC 792: the data must be returned). */
    ICMP_ECHO_REPLY_DATA_MISMATCH,

    /** Fewer than the 8 bytes of a UDP header. */
    UDP_TRUNCATED,
    /** UDP length field below 8 or beyond the IPv4 payload (RFC 768). */
    UDP_BAD_LENGTH,
    /** Non-zero UDP checksum that does not verify over the pseudo-header (RFC 768). */
    UDP_BAD_CHECKSUM,
    /** No UDP listener is registered. */
    UDP_NO_LISTENER,

    /** An outgoing frame waiting for ARP was discarded because the queue was full (oldest first). */
    ARP_QUEUE_OVERFLOW,
    /** A ping reply was discarded because nobody polled and the reply queue was full (oldest first). */
    PING_REPLY_OVERFLOW,
}
