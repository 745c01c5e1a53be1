package io.vmm4j.virtio.driver.net;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Two stacks wired directly: A's frames go into B.receive and B's into A.receive, re-entrantly. */
class BackToBackTest {
    private static final int A_IP = Ipv4Address.parseValue("10.0.0.2");
    private static final int B_IP = Ipv4Address.parseValue("10.0.0.1");

    private record Datagram(int sourceIp, int sourcePort, int destinationPort, byte[] payload) {
    }

    private final Wire aToB = new Wire();
    private final Wire bToA = new Wire();
    private GuestNetStack a;
    private GuestNetStack b;

    private void wire(int mtu) {
        a = new GuestNetStack(MacAddress.parse("52:54:00:00:00:0a"), A_IP, mtu, aToB);
        b = new GuestNetStack(MacAddress.parse("52:54:00:00:00:0b"), B_IP, mtu, bToA);
        aToB.to = b;
        bToA.to = a;
    }

    @Test
    void fivePingsResolveArpOnceAndAllComeBack() {
        wire(GuestNetStack.DEFAULT_MTU);
        long before = System.nanoTime();
        for (int seq = 1; seq <= 5; seq++) {
            a.sendPing(B_IP, 0x77, seq, 56);
        }
        long elapsed = System.nanoTime() - before;

        assertEquals(1, a.arpRequestsSent());
        assertEquals(1, b.arpRequestsAnswered());
        assertEquals(0, b.arpRequestsSent(), "B learnt A from A's request (RFC 826) and never had to ask");
        assertEquals(1, aToB.countEtherType(EthernetFrame.TYPE_ARP));
        assertEquals(1, bToA.countEtherType(EthernetFrame.TYPE_ARP));
        assertEquals(b.mac(), a.cachedMac(B_IP));
        assertEquals(a.mac(), b.cachedMac(A_IP));

        for (int seq = 1; seq <= 5; seq++) {
            PingReply reply = a.pollPingReply();
            assertEquals(seq, reply.sequence(), "replies in order");
            assertEquals(0x77, reply.identifier());
            assertEquals(B_IP, reply.sourceIp());
            assertEquals(56, reply.dataLength());
            assertTrue(reply.rttNanos() >= 0 && reply.rttNanos() <= elapsed, "rtt " + reply.rttNanos());
        }
        assertNull(a.pollPingReply());
        assertEquals(5, a.echoRequestsSent());
        assertEquals(5, b.echoRequestsAnswered());
        assertEquals(5, a.echoRepliesReceived());
        assertEquals(6, a.framesOut(), "one ARP request and five echo requests");
        assertEquals(6, b.framesOut(), "one ARP reply and five echo replies");
        assertEquals(a.framesOut(), b.framesIn());
        assertEquals(b.framesOut(), a.framesIn());
        assertEquals(0, a.dropped(), a::toString);
        assertEquals(0, b.dropped(), b::toString);
    }

    @Test
    void pingRepliesGoToTheListenerWhenOneIsSet() {
        wire(GuestNetStack.DEFAULT_MTU);
        List<PingReply> replies = new ArrayList<>();
        a.setPingReplyListener(replies::add);
        a.sendPing(B_IP, 1, 9, 0);
        assertEquals(1, replies.size());
        assertEquals(9, replies.getFirst().sequence());
        assertEquals(0, replies.getFirst().dataLength());
        assertNull(a.pollPingReply());
    }

    @Test
    void udpDeliversThePayloadAndAnEchoServiceAnswersFromInsideTheListener() {
        wire(GuestNetStack.DEFAULT_MTU);
        List<Datagram> atB = new ArrayList<>();
        List<Datagram> atA = new ArrayList<>();
        b.setUdpListener((sourceIp, sourcePort, destinationPort, payload) -> {
            atB.add(new Datagram(sourceIp, sourcePort, destinationPort, payload));
            b.sendUdp(sourceIp, destinationPort, sourcePort, payload); // RFC 862 echo, sent re-entrantly
        });
        a.setUdpListener((sourceIp, sourcePort, destinationPort, payload) ->
                atA.add(new Datagram(sourceIp, sourcePort, destinationPort, payload)));

        byte[] payload = "virtio-net says hello".getBytes();
        a.sendUdp(B_IP, 40000, 7, payload);

        assertEquals(1, atB.size());
        assertEquals(A_IP, atB.getFirst().sourceIp());
        assertEquals(40000, atB.getFirst().sourcePort());
        assertEquals(7, atB.getFirst().destinationPort());
        assertArrayEquals(payload, atB.getFirst().payload());
        assertEquals(1, atA.size());
        assertEquals(B_IP, atA.getFirst().sourceIp());
        assertEquals(7, atA.getFirst().sourcePort());
        assertEquals(40000, atA.getFirst().destinationPort());
        assertArrayEquals(payload, atA.getFirst().payload());
        assertEquals(1, a.udpDatagramsSent());
        assertEquals(1, b.udpDatagramsReceived());
        assertEquals(0, a.dropped() + b.dropped());
    }

    @Test
    void jumboMtuCarriesAn8000ByteDatagramInOneFrame() {
        wire(9000);
        List<byte[]> atB = new ArrayList<>();
        b.setUdpListener((sourceIp, sourcePort, destinationPort, payload) -> atB.add(payload));
        byte[] payload = new byte[8000];
        new Random(9000).nextBytes(payload);

        a.sendUdp(B_IP, 5001, 5002, payload);

        List<byte[]> ipv4Frames = aToB.frames.stream().filter(f -> f[12] == 0x08 && f[13] == 0x00).toList();
        assertEquals(1, ipv4Frames.size());
        assertEquals(14 + 20 + 8 + 8000, ipv4Frames.getFirst().length, "bigger than one 4 KiB buffer, not fragmented");
        assertEquals(1, atB.size());
        assertArrayEquals(payload, atB.getFirst());
        assertEquals(0, b.dropped());
    }

    @Test
    void jumboPingUsesTheWholeMtu() {
        wire(9000);
        a.sendPing(B_IP, 3, 1, 9000 - 28);
        PingReply reply = a.pollPingReply();
        assertEquals(8972, reply.dataLength());
        assertEquals(14 + 9000, aToB.last().length);
        assertThrows(IllegalArgumentException.class, () -> a.sendPing(B_IP, 3, 2, 9000 - 27));
        assertThrows(IllegalArgumentException.class, () -> a.sendUdp(B_IP, 1, 2, new byte[9000 - 27]));
    }

    @Test
    void standardMtuRefusesToBuildAndToReceiveJumboDatagrams() {
        wire(GuestNetStack.DEFAULT_MTU);
        assertEquals(1472, a.maxPayload());
        assertThrows(IllegalArgumentException.class, () -> a.sendUdp(B_IP, 1, 2, new byte[8000]));
        a.sendUdp(B_IP, 1, 2, new byte[1472]);
        assertEquals(1514, aToB.last().length);

        Wire jumboWire = new Wire();
        GuestNetStack jumbo = new GuestNetStack(MacAddress.parse("52:54:00:00:00:0c"), A_IP, 9000, jumboWire);
        byte[] arpReply = arpReplyFrom(b, jumbo);
        jumbo.receive(arpReply, 0, arpReply.length);
        jumbo.sendUdp(B_IP, 1, 2, new byte[8000]);
        b.receive(jumboWire.last(), 0, jumboWire.last().length);
        assertEquals(1, b.dropped(DropReason.ETHERNET_TOO_LONG));
    }

    /** An ARP reply as {@code from} would send it to {@code to}, built with the codecs. */
    private static byte[] arpReplyFrom(GuestNetStack from, GuestNetStack to) {
        byte[] frame = new byte[42];
        EthernetFrame.writeHeader(frame, 0, to.mac(), from.mac(), EthernetFrame.TYPE_ARP);
        new ArpPacket(ArpPacket.REPLY, from.mac(), from.ipv4(), to.mac(), to.ipv4()).writeTo(frame, 14);
        return frame;
    }
}
