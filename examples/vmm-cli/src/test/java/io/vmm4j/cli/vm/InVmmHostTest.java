package io.vmm4j.cli.vm;

import io.vmm4j.core.linux.LibC;
import io.vmm4j.tap.MemoryPort;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.virtio.driver.net.EthernetFrame;
import io.vmm4j.virtio.driver.net.GuestNetStack;
import io.vmm4j.virtio.driver.net.Ipv4Address;
import io.vmm4j.virtio.driver.net.Ipv4Packet;
import io.vmm4j.virtio.driver.net.MacAddress;
import io.vmm4j.virtio.driver.net.UdpDatagram;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The in-memory host answers what it can and counts the rest: a guest cannot make it throw or flood the log. */
class InVmmHostTest {
    private static final int HEADER = TapDevice.VNET_HEADER_V1_SIZE;
    private static final int HOST = Ipv4Address.parseValue("10.0.2.2");
    private static final int GUEST = Ipv4Address.parseValue("10.0.2.15");
    private static final MacAddress HOST_MAC = MacAddress.parse("52:54:00:00:00:01");
    private static final MacAddress GUEST_MAC = MacAddress.parse("52:54:00:12:34:56");

    /** A UDP datagram to the host's port 7 from {@code sourceIp}, behind a zeroed vnet header, built by hand (a stack would refuse the source). */
    private static byte[] datagramFrom(int sourceIp, byte[] payload) {
        int eth = HEADER;
        int ip = eth + EthernetFrame.HEADER_LENGTH;
        int udp = ip + Ipv4Packet.MIN_HEADER_LENGTH;
        byte[] b = new byte[udp + UdpDatagram.HEADER_LENGTH + payload.length];
        EthernetFrame.writeHeader(b, eth, HOST_MAC, GUEST_MAC, EthernetFrame.TYPE_IPV4);
        System.arraycopy(payload, 0, b, udp + UdpDatagram.HEADER_LENGTH, payload.length);
        int udpLength = UdpDatagram.write(b, udp, sourceIp, HOST, 4000, 7, payload.length);
        Ipv4Packet.writeHeader(b, ip, 1, Ipv4Packet.PROTOCOL_UDP, sourceIp, HOST, udpLength);
        return b;
    }

    @Test
    void udpFromAnAddressNoEchoCanGoBackToIsCountedAndDroppedWithOneLogLine() throws Exception {
        MemoryPort[] wire = MemoryPort.pair(1, HEADER);
        List<String> lines = new CopyOnWriteArrayList<>();
        ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        PrintStream realErr = System.err;
        System.setErr(new PrintStream(stderr, true, StandardCharsets.UTF_8)); // where the event loop's ERROR lines would go
        try (MemoryPort guestSide = wire[0]; MemoryPort hostSide = wire[1];
             InVmmHost host = new InVmmHost(hostSide, "10.0.2.2", lines::add)) {
            byte[] junk = "flood".getBytes(StandardCharsets.UTF_8);
            for (int i = 0; i < 100; i++) {
                guestSide.send(0, datagramFrom(i % 2 == 0 ? 0 : HOST, junk)); // 0.0.0.0, and the host's own address
            }
            long deadline = System.currentTimeMillis() + 5_000;
            while (host.stats().udpUnanswerable() < 100 && System.currentTimeMillis() < deadline) {
                Thread.sleep(20);
            }
            InVmmHost.Stats stats = host.stats();
            assertEquals(100, stats.udpUnanswerable(), "every datagram counted: " + stats);
            assertEquals(0, stats.framesFailed(), stats.toString());
            assertEquals(1, lines.size(), "one line for a hundred datagrams: " + lines);
            assertTrue(lines.getFirst().contains("in-memory host 10.0.2.2: dropped 1 frame(s) it cannot answer, the latest a UDP "
                    + "datagram from 0.0.0.0 port 4000"), lines.getFirst());

            // and it still echoes a guest that has an address
            List<byte[]> echoes = new CopyOnWriteArrayList<>();
            GuestNetStack guest = new GuestNetStack(GUEST_MAC, GUEST, GuestNetStack.DEFAULT_MTU, (frame, off, len) -> {
                byte[] b = new byte[HEADER + len];
                System.arraycopy(frame, off, b, HEADER, len);
                guestSide.send(0, b);
            });
            guest.setUdpListener((src, sport, dport, payload) -> echoes.add(payload));
            byte[] hello = "hello".getBytes(StandardCharsets.UTF_8);
            guest.sendUdp(HOST, 4000, 7, hello);
            byte[] buf = new byte[65536];
            deadline = System.currentTimeMillis() + 5_000;
            while (echoes.isEmpty() && System.currentTimeMillis() < deadline) {
                if (LibC.pollOne(guestSide.fd(0), LibC.POLLIN, 50) != 0) {
                    int n = guestSide.receive(0, buf);
                    guest.receive(buf, HEADER, n - HEADER);
                }
            }
            assertEquals(1, echoes.size(), "the echo of a datagram from " + Ipv4Address.format(GUEST));
            assertArrayEquals(hello, echoes.getFirst());
            assertEquals(1, host.stats().udpEchoed());
        } finally {
            System.setErr(realErr);
        }
        String err = stderr.toString(StandardCharsets.UTF_8);
        assertFalse(err.contains("ERROR") || err.contains("Exception"), "nothing went to the error log:\n" + err);
    }
}
