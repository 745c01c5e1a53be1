package io.vmm4j.virtio.driver.net;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Frames the stack builds, compared byte for byte with layouts written out from the RFCs. Checksums
 * are either worked by hand in the comments or computed here with {@link ReferenceChecksum}.
 */
class GoldenFrameTest {
    private static final MacAddress OWN_MAC = MacAddress.parse("52:54:00:12:34:56");
    private static final int OWN_IP = Ipv4Address.parseValue("10.0.0.2");
    private static final String PEER_MAC = "525400abcdef";

    private final Wire wire = new Wire();
    private final GuestNetStack stack = new GuestNetStack(OWN_MAC, OWN_IP, wire);

    /** Teaches the stack 10.0.0.1 = 52:54:00:ab:cd:ef with an ARP reply addressed to it (RFC 826: target learns). */
    private void learnPeer() {
        byte[] reply = Hex.bytes("525400123456" + PEER_MAC + "0806 | 0001 0800 06 04 0002" + PEER_MAC
                + "0a000001 525400123456 0a000002");
        stack.receive(reply, 0, reply.length);
        assertEquals(1, stack.arpRepliesReceived());
        assertEquals(0, wire.frames.size());
    }

    @Test
    void arpRequestForAnUnknownTarget() {
        stack.sendPing(Ipv4Address.parseValue("10.0.0.1"), 0x1234, 1, 8);

        // RFC 826 request: broadcast, ar$hrd 1, ar$pro 0800, ar$hln 6, ar$pln 4, ar$op 1, sender, target ha zero, target.
        byte[] expected = Hex.bytes("""
                ffffffffffff 525400123456 0806
                0001 0800 06 04 0001
                525400123456 0a000002
                000000000000 0a000001
                """);
        assertEquals(1, wire.frames.size());
        assertArrayEquals(expected, wire.last(), () -> Hex.of(wire.last()));
        assertEquals(1, stack.arpRequestsSent());
        assertEquals(1, stack.framesAwaitingArp());
    }

    @Test
    void icmpEchoRequest() {
        learnPeer();
        stack.sendPing(Ipv4Address.parseValue("10.0.0.1"), 0x1234, 1, 8);

        // IPv4 header checksum by hand: 4500+0024+0000+4000+4001+0a00+0002+0a00+0001 = d928, complemented 26d7.
        // ICMP checksum by hand: 0800+1234+0001+0001+0203+0405+0607 = 2645, complemented d9ba.
        byte[] expected = Hex.bytes("""
                525400abcdef 525400123456 0800
                45 00 0024 0000 4000 40 01 26d7 0a000002 0a000001
                08 00 d9ba 1234 0001 0001020304050607
                """);
        assertEquals(0x26d7, ReferenceChecksum.of(zeroed(ReferenceChecksum.slice(expected, 14, 34), 10)));
        assertEquals(0xd9ba, ReferenceChecksum.of(zeroed(ReferenceChecksum.slice(expected, 34, 50), 2)));
        assertEquals(1, wire.frames.size());
        assertArrayEquals(expected, wire.last(), () -> Hex.of(wire.last()));
        assertEquals(1, stack.echoRequestsSent());
        assertEquals(0, stack.arpRequestsSent());
    }

    @Test
    void queuedEchoRequestLeavesWithTheResolvedMacAndUnchangedBody() {
        stack.sendPing(Ipv4Address.parseValue("10.0.0.1"), 0x1234, 1, 8);
        learnPeerAfterRequest();
        assertEquals(2, wire.frames.size());
        assertArrayEquals(Hex.bytes("""
                525400abcdef 525400123456 0800
                45 00 0024 0000 4000 40 01 26d7 0a000002 0a000001
                08 00 d9ba 1234 0001 0001020304050607
                """), wire.last(), () -> Hex.of(wire.last()));
    }

    private void learnPeerAfterRequest() {
        byte[] reply = Hex.bytes("525400123456" + PEER_MAC + "0806 | 0001 0800 06 04 0002" + PEER_MAC
                + "0a000001 525400123456 0a000002");
        stack.receive(reply, 0, reply.length);
        assertEquals(0, stack.framesAwaitingArp());
    }

    @Test
    void arpReplyToARequestForUs() {
        byte[] request = Hex.bytes("ffffffffffff" + PEER_MAC + "0806 | 0001 0800 06 04 0001" + PEER_MAC
                + "0a000001 000000000000 0a000002");
        stack.receive(request, 0, request.length);

        // RFC 826: sent to the asker, op 2, our addresses as sender, the asker's as target.
        byte[] expected = Hex.bytes(PEER_MAC + "525400123456 0806 | 0001 0800 06 04 0002 525400123456 0a000002"
                + PEER_MAC + "0a000001");
        assertEquals(1, wire.frames.size());
        assertArrayEquals(expected, wire.last(), () -> Hex.of(wire.last()));
        assertEquals(1, stack.arpRequestsAnswered());
        assertEquals(MacAddress.parse("52:54:00:ab:cd:ef"), stack.cachedMac(0x0a000001), "the target learns the asker");
    }

    @Test
    void icmpEchoReplyReturnsIdentifierSequenceAndOddLengthData() {
        byte[] icmp = Hex.bytes("08 00 0000 beef 0007 616263"); // "abc": an odd length exercises the checksum padding
        ReferenceChecksum.put(icmp, 2, ReferenceChecksum.of(icmp));
        byte[] ip = Hex.bytes("45 00 001f 4242 0000 7f 01 0000 0a000001 0a000002");
        ReferenceChecksum.put(ip, 10, ReferenceChecksum.of(ip));
        byte[] request = concat(Hex.bytes("525400123456" + PEER_MAC + "0800"), ip, icmp);
        stack.receive(request, 0, request.length);

        byte[] expectedIcmp = Hex.bytes("00 00 0000 beef 0007 616263");
        ReferenceChecksum.put(expectedIcmp, 2, ReferenceChecksum.of(expectedIcmp));
        byte[] expectedIp = Hex.bytes("45 00 001f 0000 4000 40 01 0000 0a000002 0a000001");
        ReferenceChecksum.put(expectedIp, 10, ReferenceChecksum.of(expectedIp));
        byte[] expected = concat(Hex.bytes(PEER_MAC + "525400123456 0800"), expectedIp, expectedIcmp);
        assertEquals(1, wire.frames.size());
        assertArrayEquals(expected, wire.last(), () -> Hex.of(wire.last()));
        assertEquals(1, stack.echoRequestsAnswered());
    }

    @Test
    void udpDatagramWithPseudoHeaderChecksum() {
        learnPeer();
        stack.sendUdp(Ipv4Address.parseValue("10.0.0.1"), 5000, 7, "hi!".getBytes(StandardCharsets.US_ASCII));

        byte[] expectedIp = Hex.bytes("45 00 001f 0000 4000 40 11 0000 0a000002 0a000001");
        ReferenceChecksum.put(expectedIp, 10, ReferenceChecksum.of(expectedIp));
        byte[] expectedUdp = Hex.bytes("1388 0007 000b 0000 686921");
        ReferenceChecksum.put(expectedUdp, 6, ReferenceChecksum.of(
                ReferenceChecksum.udpPseudoHeader(Hex.bytes("0a000002"), Hex.bytes("0a000001"), 11), expectedUdp));
        byte[] expected = concat(Hex.bytes(PEER_MAC + "525400123456 0800"), expectedIp, expectedUdp);
        assertArrayEquals(expected, wire.last(), () -> Hex.of(wire.last()));
        assertEquals(1, stack.udpDatagramsSent());
    }

    @Test
    void udpChecksumThatComputesToZeroIsSentAsAllOnes() {
        learnPeer();
        // Two payload bytes equal to the checksum with a zero payload bring the sum to ffff, the checksum to 0.
        byte[] udpWithZeroPayload = Hex.bytes("1388 0007 000a 0000 0000");
        int checksumWithZeroPayload = ReferenceChecksum.of(
                ReferenceChecksum.udpPseudoHeader(Hex.bytes("0a000002"), Hex.bytes("0a000001"), 10), udpWithZeroPayload);
        byte[] payload = {(byte) (checksumWithZeroPayload >>> 8), (byte) checksumWithZeroPayload};
        stack.sendUdp(Ipv4Address.parseValue("10.0.0.1"), 5000, 7, payload);

        byte[] frame = wire.last();
        assertEquals(0xffff, (frame[40] & 0xFF) << 8 | frame[41] & 0xFF, "RFC 768: a computed 0 is transmitted as all ones");
        // And a receiver accepts it.
        GuestNetStack peer = new GuestNetStack(MacAddress.parse("52:54:00:ab:cd:ef"), 0x0a000001, new Wire());
        List<byte[]> received = new ArrayList<>();
        peer.setUdpListener((sourceIp, sourcePort, destinationPort, data) -> received.add(data));
        peer.receive(frame, 0, frame.length);
        assertEquals(1, received.size());
        assertArrayEquals(payload, received.getFirst());
    }

    private static byte[] zeroed(byte[] data, int checksumOffset) {
        data[checksumOffset] = 0;
        data[checksumOffset + 1] = 0;
        return data;
    }

    static byte[] concat(byte[]... parts) {
        int length = 0;
        for (byte[] part : parts) {
            length += part.length;
        }
        byte[] result = new byte[length];
        int at = 0;
        for (byte[] part : parts) {
            System.arraycopy(part, 0, result, at, part.length);
            at += part.length;
        }
        return result;
    }
}
