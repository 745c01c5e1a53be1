package io.vmm4j.virtio.driver.net;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * ARP resolution, queueing and ping bookkeeping, on a link the test drives frame by frame with a
 * manual clock: A = 52:54:00:00:00:0a / 10.0.0.2, B = 52:54:00:00:00:0b / 10.0.0.1.
 */
class ArpResolutionTest {
    private static final int A_IP = Ipv4Address.parseValue("10.0.0.2");
    private static final int B_IP = Ipv4Address.parseValue("10.0.0.1");
    private static final MacAddress B_MAC = MacAddress.parse("52:54:00:00:00:0b");

    private final ManualClock clock = new ManualClock();
    private final Wire fromA = new Wire();
    private final Wire fromB = new Wire();
    private final GuestNetStack a = new GuestNetStack(MacAddress.parse("52:54:00:00:00:0a"), A_IP,
            GuestNetStack.DEFAULT_MTU, fromA, clock);
    private final GuestNetStack b = new GuestNetStack(B_MAC, B_IP, GuestNetStack.DEFAULT_MTU, fromB, clock);

    /** Delivers the frames one side has sent since the last call to the other side, in order. */
    private static void deliver(Wire wire, int[] taken, GuestNetStack to) {
        while (taken[0] < wire.frames.size()) {
            byte[] frame = wire.frames.get(taken[0]++);
            to.receive(frame, 0, frame.length);
        }
    }

    private final int[] takenFromA = {0};
    private final int[] takenFromB = {0};

    private void aToB() {
        deliver(fromA, takenFromA, b);
    }

    private void bToA() {
        deliver(fromB, takenFromB, a);
    }

    @Test
    void rttRunsFromTheEchoRequestLeavingNotFromSendPing() {
        clock.now = 1_000;
        a.sendPing(B_IP, 7, 1, 32);
        assertEquals(1, fromA.frames.size(), "only the ARP request so far");
        aToB();
        clock.now = 5_000_000; // the ARP reply takes 5 ms
        bToA();
        assertEquals(2, fromA.frames.size(), "the echo request left when the reply came");
        aToB();
        clock.now = 5_250_000;
        bToA();
        PingReply reply = a.pollPingReply();
        assertEquals(new PingReply(B_IP, 7, 1, 32, 250_000), reply);
        assertEquals("40 bytes from 10.0.0.1: icmp_seq=1 id=7 time=0.250 ms", reply.toString());
    }

    @Test
    void arpRequestsArePacedToOnePerSecondPerDestination() {
        clock.now = 5_000_000_000L; // not zero, so a forgotten request time would show
        a.sendPing(B_IP, 1, 1, 0);
        a.sendPing(B_IP, 1, 2, 0);
        clock.now = 5_999_999_999L;
        a.sendPing(B_IP, 1, 3, 0);
        assertEquals(1, a.arpRequestsSent());
        clock.now = 6_000_000_000L;
        a.sendPing(B_IP, 1, 4, 0);
        assertEquals(2, a.arpRequestsSent(), "RFC 1122 §2.3.2.1: a retry after a second");
        a.sendUdp(Ipv4Address.parseValue("10.0.0.3"), 1, 2, new byte[1]);
        assertEquals(3, a.arpRequestsSent(), "another destination has its own pace");
        assertEquals(5, a.framesAwaitingArp());

        aToB();
        bToA();
        assertEquals(1, a.framesAwaitingArp(), "the datagram for 10.0.0.3 still waits");
        aToB();
        bToA();
        for (int seq = 1; seq <= 4; seq++) {
            assertEquals(seq, a.pollPingReply().sequence());
        }
        assertEquals(2, b.arpRequestsAnswered(), "each request for B is answered");
    }

    @Test
    void theArpQueueIsBoundedAndDropsTheOldest() {
        int queued = GuestNetStack.ARP_QUEUE_LIMIT + 8;
        for (int seq = 0; seq < queued; seq++) {
            a.sendPing(B_IP, 1, seq, 4);
        }
        assertEquals(GuestNetStack.ARP_QUEUE_LIMIT, a.framesAwaitingArp());
        assertEquals(8, a.dropped(DropReason.ARP_QUEUE_OVERFLOW));

        aToB();
        bToA();
        aToB();
        bToA();
        List<Integer> sequences = new ArrayList<>();
        for (PingReply reply; (reply = a.pollPingReply()) != null; ) {
            sequences.add(reply.sequence());
        }
        assertEquals(GuestNetStack.ARP_QUEUE_LIMIT, sequences.size());
        assertEquals(8, sequences.getFirst());
        assertEquals(queued - 1, sequences.getLast());
    }

    @Test
    void rfc826MergeUpdatesKnownSendersButOnlyTheTargetAddsNewOnes() {
        a.receive(arp(ArpPacket.REPLY, B_MAC, B_IP, A_IP), 0, 42);
        assertEquals(B_MAC, a.cachedMac(B_IP));

        MacAddress moved = MacAddress.parse("52:54:00:00:00:bb");
        a.receive(arp(ArpPacket.REQUEST, moved, B_IP, Ipv4Address.parseValue("10.0.0.9")), 0, 42);
        assertEquals(moved, a.cachedMac(B_IP), "a known sender is updated whoever the request is for");

        int stranger = Ipv4Address.parseValue("10.0.0.3");
        a.receive(arp(ArpPacket.REQUEST, MacAddress.parse("52:54:00:00:00:03"), stranger,
                Ipv4Address.parseValue("10.0.0.9")), 0, 42);
        assertNull(a.cachedMac(stranger), "an unknown sender is not added unless we are the target");
        assertEquals(2, a.dropped(DropReason.ARP_NOT_FOR_US));
        assertEquals(0, fromA.frames.size());
    }

    @Test
    void aMergeCompletesAPendingResolution() {
        a.sendUdp(B_IP, 1, 2, new byte[] {42});
        // B announces itself while asking someone else: A had an unresolved entry, so it merges and sends.
        a.receive(arp(ArpPacket.REQUEST, B_MAC, B_IP, Ipv4Address.parseValue("10.0.0.9")), 0, 42);
        assertEquals(0, a.framesAwaitingArp());
        assertEquals(2, fromA.frames.size());
        assertArrayEquals(B_MAC.octets(), java.util.Arrays.copyOf(fromA.last(), 6));
    }

    @Test
    void arpProbeIsAnsweredButItsZeroSenderIsNotLearnt() {
        // RFC 5227 probe: sender protocol address 0.0.0.0, target our address.
        a.receive(arp(ArpPacket.REQUEST, B_MAC, 0, A_IP), 0, 42);
        assertEquals(1, a.arpRequestsAnswered());
        assertNull(a.cachedMac(0));
        ArpPacket reply = ArpPacket.decode(fromA.last(), 14, 28, new DropCounters());
        assertEquals(new ArpPacket(ArpPacket.REPLY, a.mac(), A_IP, B_MAC, 0), reply);
    }

    @Test
    void duplicateAndCorruptedEchoRepliesAreCountedNotReported() {
        a.receive(arp(ArpPacket.REPLY, B_MAC, B_IP, A_IP), 0, 42);
        a.sendPing(B_IP, 5, 1, 16);
        aToB();
        byte[] reply = fromB.last().clone();

        byte[] corrupted = reply.clone();
        corrupted[14 + 20 + 8 + 3] ^= 0x40; // a data byte, with the ICMP checksum made to match
        ReferenceChecksum.put(corrupted, 14 + 20 + 2, 0);
        ReferenceChecksum.put(corrupted, 14 + 20 + 2,
                ReferenceChecksum.of(ReferenceChecksum.slice(corrupted, 14 + 20, corrupted.length)));
        a.receive(corrupted, 0, corrupted.length);
        assertEquals(1, a.dropped(DropReason.ICMP_ECHO_REPLY_DATA_MISMATCH), a::toString);
        assertNull(a.pollPingReply());

        a.receive(reply, 0, reply.length);
        assertEquals(1, a.pollPingReply().sequence());
        a.receive(reply, 0, reply.length);
        assertEquals(1, a.dropped(DropReason.ICMP_ECHO_REPLY_UNMATCHED), "a duplicate");
        assertNull(a.pollPingReply());
        assertEquals(1, a.echoRepliesReceived());
    }

    @Test
    void repliesFromAnotherAddressDoNotMatch() {
        a.receive(arp(ArpPacket.REPLY, B_MAC, B_IP, A_IP), 0, 42);
        a.sendPing(B_IP, 5, 1, 0);
        // C (10.0.0.3) answers with B's identifier and sequence: not B's reply.
        Wire fromC = new Wire();
        GuestNetStack c = new GuestNetStack(MacAddress.parse("52:54:00:00:00:0c"), Ipv4Address.parseValue("10.0.0.3"),
                GuestNetStack.DEFAULT_MTU, fromC, clock);
        byte[] request = fromA.last().clone();
        c.receive(rewriteDestination(request, c), 0, request.length);
        assertEquals(1, c.echoRequestsAnswered());
        a.receive(fromC.last(), 0, fromC.last().length);
        assertEquals(1, a.dropped(DropReason.ICMP_ECHO_REPLY_UNMATCHED));
        assertNull(a.pollPingReply());

        aToB();
        bToA();
        assertEquals(B_IP, a.pollPingReply().sourceIp(), "B's own reply still matches");
    }

    /** The same echo request addressed to {@code to}, header checksum recomputed. */
    private static byte[] rewriteDestination(byte[] frame, GuestNetStack to) {
        to.mac().writeTo(frame, 0);
        frame[30] = (byte) (to.ipv4() >>> 24);
        frame[31] = (byte) (to.ipv4() >>> 16);
        frame[32] = (byte) (to.ipv4() >>> 8);
        frame[33] = (byte) to.ipv4();
        ReferenceChecksum.put(frame, 24, 0);
        ReferenceChecksum.put(frame, 24, ReferenceChecksum.of(ReferenceChecksum.slice(frame, 14, 34)));
        return frame;
    }

    @Test
    void unpolledRepliesAreBounded() {
        a.receive(arp(ArpPacket.REPLY, B_MAC, B_IP, A_IP), 0, 42);
        int pings = GuestNetStack.PING_REPLY_QUEUE_LIMIT + 3;
        for (int seq = 0; seq < pings; seq++) {
            a.sendPing(B_IP, 1, seq, 0);
            aToB();
            bToA();
        }
        assertEquals(3, a.dropped(DropReason.PING_REPLY_OVERFLOW));
        assertEquals(3, a.pollPingReply().sequence(), "the oldest went first");
    }

    @Test
    void udpToLimitedBroadcastNeedsNoArp() {
        List<Integer> sources = new ArrayList<>();
        b.setUdpListener((sourceIp, sourcePort, destinationPort, payload) -> sources.add(sourceIp));
        a.sendUdp(Ipv4Address.LIMITED_BROADCAST, 68, 67, new byte[] {1});
        assertEquals(0, a.arpRequestsSent());
        assertArrayEquals(MacAddress.BROADCAST.octets(), java.util.Arrays.copyOf(fromA.last(), 6));
        aToB();
        assertEquals(List.of(A_IP), sources);
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> a.sendPing(A_IP, 1, 1, 0), "ourselves");
        assertThrows(IllegalArgumentException.class, () -> a.sendPing(0, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> a.sendPing(Ipv4Address.parseValue("224.0.0.1"), 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> a.sendPing(Ipv4Address.LIMITED_BROADCAST, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> a.sendPing(B_IP, 65536, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> a.sendPing(B_IP, 1, -1, 0));
        assertThrows(IllegalArgumentException.class, () -> a.sendPing(B_IP, 1, 1, -1));
        assertThrows(IllegalArgumentException.class, () -> a.sendUdp(B_IP, 70000, 1, new byte[0]));
        assertThrows(IndexOutOfBoundsException.class, () -> a.sendUdp(B_IP, 1, 1, new byte[4], 2, 3));
        assertThrows(IllegalArgumentException.class,
                () -> new GuestNetStack(MacAddress.BROADCAST, A_IP, new Wire()));
        assertThrows(IllegalArgumentException.class,
                () -> new GuestNetStack(B_MAC, Ipv4Address.parseValue("239.1.1.1"), new Wire()));
        assertThrows(IllegalArgumentException.class, () -> new GuestNetStack(B_MAC, A_IP, 67, new Wire()));
        assertThrows(IllegalArgumentException.class, () -> new GuestNetStack(B_MAC, A_IP, 65536, new Wire()));
        assertEquals(0, fromA.frames.size());
    }

    private static byte[] arp(int operation, MacAddress senderMac, int senderIp, int targetIp) {
        byte[] frame = new byte[42];
        MacAddress destination = operation == ArpPacket.REQUEST ? MacAddress.BROADCAST : MacAddress.parse("52:54:00:00:00:0a");
        EthernetFrame.writeHeader(frame, 0, destination, senderMac, EthernetFrame.TYPE_ARP);
        new ArpPacket(operation, senderMac, senderIp, operation == ArpPacket.REQUEST ? MacAddress.ZERO : destination,
                targetIp).writeTo(frame, 14);
        return frame;
    }
}
