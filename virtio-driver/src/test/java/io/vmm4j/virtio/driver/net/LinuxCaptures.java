package io.vmm4j.virtio.driver.net;

/**
 * Frames captured from a Linux 6.18 kernel through a TAP device (IFF_TAP | IFF_NO_PI) in a network
 * namespace: the kernel's interface was 52:54:00:12:34:56 / 10.0.0.1, and the test peer on the
 * other side of the TAP was 52:54:00:ab:cd:ef / 10.0.0.2. The peer's frames were written by hand.
 */
final class LinuxCaptures {
    private LinuxCaptures() {
    }

    static final MacAddress LINUX_MAC = MacAddress.parse("52:54:00:12:34:56");
    static final int LINUX_IP = Ipv4Address.parseValue("10.0.0.1");
    static final MacAddress PEER_MAC = MacAddress.parse("52:54:00:ab:cd:ef");
    static final int PEER_IP = Ipv4Address.parseValue("10.0.0.2");

    /** Peer to Linux: ARP who-has 10.0.0.1 tell 10.0.0.2. */
    static final String PEER_ARP_REQUEST =
            "ffffffffffff 525400abcdef 0806 | 0001 0800 06 04 0001 525400abcdef 0a000002 000000000000 0a000001";

    /** Linux's answer to {@link #PEER_ARP_REQUEST}: ARP reply 10.0.0.1 is-at 52:54:00:12:34:56 (42 bytes, unpadded). */
    static final String LINUX_ARP_REPLY =
            "525400abcdef 525400123456 0806 | 0001 0800 06 04 0002 525400123456 0a000001 525400abcdef 0a000002";

    /** Peer to Linux: echo request id 1234 seq 1, 56 data bytes (8 zeros, then 0x10..0x3f), IPv4 id 0x1111, DF. */
    static final String PEER_ECHO_REQUEST = "525400123456 525400abcdef 0800"
            + "| 4500 0054 1111 4000 4001 1596 0a000002 0a000001"
            + "| 0800 4769 04d2 0001 0000000000000000"
            + "  101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

    /** Linux's echo reply to {@link #PEER_ECHO_REQUEST}: its own IPv4 id 0xc0b5, no DF, data returned unchanged. */
    static final String LINUX_ECHO_REPLY = "525400abcdef 525400123456 0800"
            + "| 4500 0054 c0b5 0000 4001 a5f1 0a000001 0a000002"
            + "| 0000 4f69 04d2 0001 0000000000000000"
            + "  101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

    /** Linux resolving 10.0.0.2 before a UDP send: ARP who-has 10.0.0.2 tell 10.0.0.1. */
    static final String LINUX_ARP_REQUEST =
            "ffffffffffff 525400123456 0806 | 0001 0800 06 04 0001 525400123456 0a000001 000000000000 0a000002";

    /** The peer's hand-written answer to {@link #LINUX_ARP_REQUEST}, which Linux accepted. */
    static final String PEER_ARP_REPLY =
            "525400123456 525400abcdef 0806 | 0001 0800 06 04 0002 525400abcdef 0a000002 525400123456 0a000001";

    /** Linux UDP 10.0.0.1:40000 > 10.0.0.2:7, "hello from linux", checksummed by the kernel. */
    static final String LINUX_UDP = "525400abcdef 525400123456 0800"
            + "| 4500 002c 40df 4000 4011 e5df 0a000001 0a000002"
            + "| 9c40 0007 0018 364f 68656c6c6f2066726f6d206c696e7578";

    /** {@code ping -c1 10.0.0.2} from Linux (ICMP datagram socket, id 0x321f): 16 bytes of timeval, then 0x10..0x37. */
    static final String LINUX_ECHO_REQUEST = "525400abcdef 525400123456 0800"
            + "| 4500 0054 ac60 4000 4001 7a46 0a000001 0a000002"
            + "| 0800 81d0 321f 0001 17ab056b00000000 5f26090000000000"
            + "  101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";

    /** An MLDv2 report Linux multicast on the link when the interface came up (IPv6, to 33:33:00:00:00:16). */
    static final String LINUX_MLD_REPORT = "333300000016 525400123456 86dd"
            + "| 6000000000240001fe80000000000000505400fffe123456ff020000000000000000000000000016"
            + "  3a000502000001008f00b8e40000000104000000ff0200000000000000000001ff123456";
}
