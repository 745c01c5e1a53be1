package io.vmm4j.virtio.driver.net;

/**
 * An ICMP echo reply (RFC 792) that answered one of this stack's pings, with its round-trip time: from
 * handing the echo request to the {@link FrameSink} (after ARP resolution, so ARP is not counted) to
 * receiving the reply, by the stack's nanosecond clock.
 */
public record PingReply(int sourceIp, int identifier, int sequence, int dataLength, long rttNanos) {
    @Override
    public String toString() {
        return String.format("%d bytes from %s: icmp_seq=%d id=%d time=%d.%03d ms", dataLength + 8,
                Ipv4Address.format(sourceIp), sequence, identifier, rttNanos / 1_000_000, rttNanos / 1000 % 1000);
    }
}
