package io.vmm4j.virtio.driver.net;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import static io.vmm4j.virtio.driver.net.GoldenFrameTest.concat;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.params.provider.Arguments.arguments;

/**
 * Every malformed or unwanted frame is dropped under its own reason, nothing is sent and nothing
 * is thrown. Each case mutates a frame that the last tests show is accepted when left alone.
 */
class MalformedFrameTest {
    private static final MacAddress OWN_MAC = MacAddress.parse("52:54:00:12:34:56");
    private static final int OWN_IP = Ipv4Address.parseValue("10.0.0.2");
    private static final String OWN = "525400123456";
    private static final String PEER = "525400abcdef";
    private static final int IP = 14;
    private static final int L4 = 34;

    private final Wire wire = new Wire();
    private final GuestNetStack stack = new GuestNetStack(OWN_MAC, OWN_IP, wire);
    private final List<byte[]> delivered = new ArrayList<>();

    {
        stack.setUdpListener((sourceIp, sourcePort, destinationPort, payload) -> delivered.add(payload));
    }

    // ------------------------------------------------------------ well-formed frames from 10.0.0.1 to 10.0.0.2

    static byte[] arpRequest() {
        return Hex.bytes("ffffffffffff" + PEER + "0806 | 0001 0800 06 04 0001" + PEER + "0a000001 000000000000 0a000002");
    }

    static byte[] echoRequest() {
        return fixIcmp(ipv4(1, Hex.bytes("08 00 0000 0001 0001 70696e67"))); // data "ping"
    }

    static byte[] udp() {
        return fixUdp(ipv4(17, Hex.bytes("9c40 0007 000d 0000 68656c6c6f"))); // 40000 > 7, "hello"
    }

    /** An IPv4 frame with a correct header checksum around {@code transport}. */
    static byte[] ipv4(int protocol, byte[] transport) {
        byte[] header = Hex.bytes("45 00 0000 abcd 0000 40 00 0000 0a000001 0a000002");
        header[9] = (byte) protocol;
        ReferenceChecksum.put(header, 2, 20 + transport.length);
        return fixIpv4(concat(Hex.bytes(OWN + PEER + "0800"), header, transport));
    }

    static byte[] fixIpv4(byte[] frame) {
        int headerLength = Math.min((frame[IP] & 0xF) * 4, frame.length - IP);
        ReferenceChecksum.put(frame, IP + 10, 0);
        ReferenceChecksum.put(frame, IP + 10, ReferenceChecksum.of(ReferenceChecksum.slice(frame, IP, IP + headerLength)));
        return frame;
    }

    static byte[] fixIcmp(byte[] frame) {
        ReferenceChecksum.put(frame, L4 + 2, 0);
        ReferenceChecksum.put(frame, L4 + 2, ReferenceChecksum.of(ReferenceChecksum.slice(frame, L4, frame.length)));
        return frame;
    }

    static byte[] fixUdp(byte[] frame) {
        int udpLength = (frame[L4 + 4] & 0xFF) << 8 | frame[L4 + 5] & 0xFF;
        ReferenceChecksum.put(frame, L4 + 6, 0);
        byte[] pseudo = ReferenceChecksum.udpPseudoHeader(ReferenceChecksum.slice(frame, IP + 12, IP + 16),
                ReferenceChecksum.slice(frame, IP + 16, IP + 20), udpLength);
        ReferenceChecksum.put(frame, L4 + 6, ReferenceChecksum.of(pseudo, ReferenceChecksum.slice(frame, L4, L4 + udpLength)));
        return frame;
    }

    /** Overwrites {@code frame} at {@code offset} with the hex bytes, and returns it. */
    static byte[] set(byte[] frame, int offset, String hex) {
        byte[] bytes = Hex.bytes(hex);
        System.arraycopy(bytes, 0, frame, offset, bytes.length);
        return frame;
    }

    static byte[] cut(byte[] frame, int length) {
        return Arrays.copyOf(frame, length);
    }

    static byte[] flip(byte[] frame, int offset) {
        frame[offset] ^= 0x01;
        return frame;
    }

    // ------------------------------------------------------------ the table

    static Stream<Arguments> malformed() {
        return Stream.of(
                drop("empty frame", new byte[0], DropReason.ETHERNET_TRUNCATED),
                drop("13 bytes of Ethernet header", cut(echoRequest(), 13), DropReason.ETHERNET_TRUNCATED),
                drop("one byte over the 1500 MTU", Arrays.copyOf(echoRequest(), 14 + 1501), DropReason.ETHERNET_TOO_LONG),
                drop("unicast to another MAC", set(echoRequest(), 0, "525400999999"), DropReason.ETHERNET_NOT_FOR_US),
                drop("Linux MLD report to 33:33:00:00:00:16", Hex.bytes(LinuxCaptures.LINUX_MLD_REPORT),
                        DropReason.ETHERNET_NOT_FOR_US),
                drop("multicast source MAC", set(echoRequest(), 6, "01005e000001"), DropReason.ETHERNET_BAD_SOURCE),
                drop("our own MAC as source", set(echoRequest(), 6, OWN), DropReason.ETHERNET_BAD_SOURCE),
                drop("802.1Q tag", set(echoRequest(), 12, "8100"), DropReason.ETHERTYPE_UNSUPPORTED),
                drop("IPv6 unicast to us", set(echoRequest(), 12, "86dd"), DropReason.ETHERTYPE_UNSUPPORTED),
                drop("802.3 length field", set(echoRequest(), 12, "0020"), DropReason.ETHERTYPE_UNSUPPORTED),

                drop("ARP header cut at 7 bytes", cut(arpRequest(), 14 + 7), DropReason.ARP_TRUNCATED),
                drop("ARP cut at 20 of 28 bytes", cut(arpRequest(), 14 + 20), DropReason.ARP_TRUNCATED),
                drop("ARP hardware length 8", set(arpRequest(), 18, "08"), DropReason.ARP_BAD_HARDWARE),
                drop("ARP hardware type 6 (IEEE 802)", set(arpRequest(), 14, "0006"), DropReason.ARP_BAD_HARDWARE),
                drop("ARP protocol type IPv6", set(arpRequest(), 16, "86dd"), DropReason.ARP_BAD_PROTOCOL),
                drop("ARP protocol length 16", set(arpRequest(), 19, "10"), DropReason.ARP_BAD_PROTOCOL),
                drop("ARP operation 3 (RARP)", set(arpRequest(), 20, "0003"), DropReason.ARP_BAD_OPERATION),
                drop("ARP operation 0", set(arpRequest(), 20, "0000"), DropReason.ARP_BAD_OPERATION),
                drop("ARP sender hardware broadcast", set(arpRequest(), 22, "ffffffffffff"), DropReason.ARP_BAD_SENDER),
                drop("ARP sender claims our address", set(arpRequest(), 28, "0a000002"), DropReason.ARP_BAD_SENDER),
                drop("ARP request for 10.0.0.9", set(arpRequest(), 38, "0a000009"), DropReason.ARP_NOT_FOR_US),

                drop("19 bytes of IPv4 header", cut(echoRequest(), IP + 19), DropReason.IPV4_TRUNCATED),
                drop("version 6 in an IPv4 frame", fixIpv4(set(echoRequest(), IP, "65")), DropReason.IPV4_BAD_VERSION),
                drop("IHL 4 (< 5)", set(echoRequest(), IP, "44"), DropReason.IPV4_BAD_HEADER_LENGTH),
                drop("IHL 0", set(echoRequest(), IP, "40"), DropReason.IPV4_BAD_HEADER_LENGTH),
                drop("IHL 15 with 32 bytes present", set(echoRequest(), IP, "4f"), DropReason.IPV4_BAD_HEADER_LENGTH),
                drop("header checksum off by one", flip(echoRequest(), IP + 11), DropReason.IPV4_BAD_CHECKSUM),
                drop("source changed, checksum not", flip(echoRequest(), IP + 15), DropReason.IPV4_BAD_CHECKSUM),
                drop("total length one past the frame", fixIpv4(set(echoRequest(), IP + 2, "0021")),
                        DropReason.IPV4_BAD_TOTAL_LENGTH),
                drop("total length 65535", fixIpv4(set(echoRequest(), IP + 2, "ffff")), DropReason.IPV4_BAD_TOTAL_LENGTH),
                drop("total length below the header", fixIpv4(set(echoRequest(), IP + 2, "0013")),
                        DropReason.IPV4_BAD_TOTAL_LENGTH),
                drop("first fragment (MF)", fixIpv4(set(echoRequest(), IP + 6, "2000")), DropReason.IPV4_FRAGMENT),
                drop("later fragment (offset 1)", fixIpv4(set(echoRequest(), IP + 6, "0001")), DropReason.IPV4_FRAGMENT),
                drop("multicast source 224.0.0.1", fixIpv4(set(echoRequest(), IP + 12, "e0000001")),
                        DropReason.IPV4_BAD_SOURCE),
                drop("broadcast source", fixIpv4(set(echoRequest(), IP + 12, "ffffffff")), DropReason.IPV4_BAD_SOURCE),
                drop("to 10.0.0.9", fixIpv4(set(echoRequest(), IP + 16, "0a000009")), DropReason.IPV4_NOT_FOR_US),
                drop("TCP", fixIpv4(set(echoRequest(), IP + 9, "06")), DropReason.IPV4_PROTOCOL_UNSUPPORTED),

                drop("4 bytes of ICMP", ipv4(1, Hex.bytes("0800f7ff")), DropReason.ICMP_TRUNCATED),
                drop("ICMP data changed, checksum not", flip(echoRequest(), L4 + 9), DropReason.ICMP_BAD_CHECKSUM),
                drop("ICMP checksum zeroed", set(echoRequest(), L4 + 2, "0000"), DropReason.ICMP_BAD_CHECKSUM),
                drop("ICMP destination unreachable", fixIcmp(set(echoRequest(), L4, "03")), DropReason.ICMP_TYPE_UNSUPPORTED),
                drop("ICMP timestamp request", fixIcmp(set(echoRequest(), L4, "0d")), DropReason.ICMP_TYPE_UNSUPPORTED),
                drop("echo request to 255.255.255.255",
                        fixIpv4(set(set(echoRequest(), 0, "ffffffffffff"), IP + 16, "ffffffff")),
                        DropReason.ICMP_ECHO_TO_BROADCAST),
                drop("echo reply nobody asked for", fixIcmp(set(echoRequest(), L4, "00")),
                        DropReason.ICMP_ECHO_REPLY_UNMATCHED),

                drop("6 bytes of UDP", ipv4(17, Hex.bytes("9c40 0007 0006")), DropReason.UDP_TRUNCATED),
                drop("UDP length 7", fixUdp(set(udp(), L4 + 4, "0007")), DropReason.UDP_BAD_LENGTH),
                drop("UDP length 0", set(udp(), L4 + 4, "0000"), DropReason.UDP_BAD_LENGTH),
                drop("UDP length one past the IPv4 payload", set(udp(), L4 + 4, "000e"), DropReason.UDP_BAD_LENGTH),
                drop("UDP payload changed, checksum not", flip(udp(), L4 + 8), DropReason.UDP_BAD_CHECKSUM),
                drop("UDP checksum covers the pseudo-header: destination changed", fixIpv4(set(set(udp(), 0, "ffffffffffff"),
                        IP + 16, "ffffffff")), DropReason.UDP_BAD_CHECKSUM));
    }

    private static Arguments drop(String name, byte[] frame, DropReason reason) {
        return arguments(name, frame, reason);
    }

    @ParameterizedTest(name = "{0} -> {2}")
    @MethodSource("malformed")
    void isDroppedAndCountedUnderItsReason(String name, byte[] frame, DropReason reason) {
        assertDoesNotThrow(() -> stack.receive(frame, 0, frame.length));
        assertEquals(1, stack.framesIn());
        assertEquals(1, stack.dropped(reason), () -> stack.dropReasons().toString());
        assertEquals(1, stack.dropped(), () -> stack.dropReasons().toString());
        assertEquals(List.of(), wire.frames, "nothing is sent in answer");
        assertEquals(List.of(), delivered);
        assertEquals(0, stack.arpRequestsAnswered() + stack.echoRequestsAnswered() + stack.udpDatagramsReceived());
    }

    @Test
    void theUnmutatedFramesAreAccepted() {
        stack.receive(arpRequest(), 0, 42);
        byte[] echo = echoRequest();
        stack.receive(echo, 0, echo.length);
        byte[] datagram = udp();
        stack.receive(datagram, 0, datagram.length);
        assertEquals(1, stack.arpRequestsAnswered());
        assertEquals(1, stack.echoRequestsAnswered());
        assertEquals(1, delivered.size());
        assertEquals("hello", new String(delivered.getFirst()));
        assertEquals(0, stack.dropped());
    }

    @Test
    void acceptsWhatTheRfcsAllow() {
        // RFC 768: checksum 0 means none was computed.
        byte[] unchecked = set(udp(), L4 + 6, "0000");
        stack.receive(unchecked, 0, unchecked.length);
        // RFC 791: options (IHL 6 here, one word of NOPs) are skipped.
        byte[] header = Hex.bytes("46 00 0024 abcd 0000 40 01 0000 0a000001 0a000002 01010101");
        byte[] icmp = Hex.bytes("08 00 0000 0001 0002 70696e67");
        ReferenceChecksum.put(icmp, 2, ReferenceChecksum.of(icmp));
        byte[] withOptions = fixIpv4(concat(Hex.bytes(OWN + PEER + "0800"), header, icmp));
        stack.receive(withOptions, 0, withOptions.length);
        // Ethernet padding to the 60-byte minimum follows the datagram.
        byte[] padded = Arrays.copyOf(echoRequest(), 60);
        stack.receive(padded, 0, padded.length);
        // Limited broadcast UDP (RFC 919) is delivered.
        byte[] broadcast = fixUdp(fixIpv4(set(set(udp(), 0, "ffffffffffff"), IP + 16, "ffffffff")));
        stack.receive(broadcast, 0, broadcast.length);

        assertEquals(0, stack.dropped(), () -> stack.dropReasons().toString());
        assertEquals(2, delivered.size());
        assertEquals(2, stack.echoRequestsAnswered());
        // The reply to the options packet has a plain 20-byte header and the same ICMP message type 0.
        byte[] reply = wire.frames.getFirst();
        assertEquals(14 + 20 + 12, reply.length);
        assertEquals(0x45, reply[IP]);
        assertEquals(0, reply[L4]);
    }

    @Test
    void udpWithoutAListenerIsCounted() {
        stack.setUdpListener(null);
        byte[] datagram = udp();
        stack.receive(datagram, 0, datagram.length);
        assertEquals(1, stack.dropped(DropReason.UDP_NO_LISTENER));
    }

    @Test
    void aFrameOutsideItsArrayIsACallerErrorNotInput() {
        byte[] frame = echoRequest();
        assertThrows(IndexOutOfBoundsException.class, () -> stack.receive(frame, 1, frame.length));
        assertThrows(IndexOutOfBoundsException.class, () -> stack.receive(frame, -1, 10));
        assertEquals(0, stack.framesIn());
    }

    /**
     * Every truncation and every single-byte corruption of valid frames: no exception, and each frame is
     * accounted for exactly once, either as a drop or as something the stack acted on.
     */
    @Test
    void everyTruncationAndByteFlipIsAccountedForOnce() {
        List<byte[]> bases = List.of(arpRequest(), echoRequest(), udp());
        List<UnaryOperator<byte[]>> mutations = new ArrayList<>();
        int maxLength = bases.stream().mapToInt(b -> b.length).max().orElseThrow();
        for (int length = 0; length < maxLength; length++) {
            int at = length;
            mutations.add(frame -> Arrays.copyOf(frame, Math.min(at, frame.length)));
        }
        for (int position = 0; position < maxLength; position++) {
            for (int mask = 1; mask <= 0xff; mask++) {
                int at = position;
                int flip = mask;
                mutations.add(frame -> {
                    byte[] copy = frame.clone();
                    if (at < copy.length) {
                        copy[at] ^= (byte) flip;
                    }
                    return copy;
                });
            }
        }
        int checked = 0;
        for (byte[] base : bases) {
            for (UnaryOperator<byte[]> mutation : mutations) {
                byte[] frame = mutation.apply(base);
                long before = accounted();
                assertDoesNotThrow(() -> stack.receive(frame, 0, frame.length), () -> Hex.of(frame));
                assertEquals(before + 1, accounted(), () -> Hex.of(frame) + " " + stack);
                checked++;
            }
        }
        assertEquals(stack.framesIn(), accounted());
        assertTrue(checked > 30_000, "checked " + checked);
        assertTrue(stack.dropped() > checked / 2, stack::toString);
    }

    private long accounted() {
        return stack.dropped() + stack.arpRequestsAnswered() + stack.arpRepliesReceived()
                + stack.echoRequestsAnswered() + stack.echoRepliesReceived() + stack.udpDatagramsReceived();
    }
}
