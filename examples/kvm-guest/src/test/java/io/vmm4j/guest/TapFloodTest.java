package io.vmm4j.guest;

import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tap ceiling helper as a child process: it refuses what is not a tap and counts what it sends (taps: CompareCommandTest). */
class TapFloodTest {
    @BeforeEach
    void requirements() {
        HostRequirements.requireCommand("gcc", "gcc");
        assertTrue(TapFlood.built(), "gcc is here, so the build must have produced tapflood");
    }

    @Test
    void aDescriptorThatIsNotATapIsRefusedWithWhatItIs() {
        int eventfd = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        try (TapFlood.Run run = TapFlood.write(eventfd, 12, 0.1, new byte[60])) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> run.await(Duration.ofSeconds(10)));
            assertTrue(e.getMessage().contains("tapflood write failed (exit 2)") && e.getMessage().contains("is not a tun/tap device"),
                    e.getMessage());
        } finally {
            LibC.close(eventfd);
        }
    }

    @Test
    void theDatagramsItCountsAreTheOnesAReceiverGets() throws Exception {
        try (DatagramChannel receiver = DatagramChannel.open().setOption(StandardSocketOptions.SO_RCVBUF, 1 << 20)
                .bind(new InetSocketAddress("127.0.0.1", 0))) {
            int port = ((InetSocketAddress) receiver.getLocalAddress()).getPort();
            TapFlood.Result sent;
            try (TapFlood.Run run = TapFlood.send("127.0.0.1", "127.0.0.1", port, 22, 10, 200)) {
                sent = run.await(Duration.ofSeconds(20));
            }
            assertEquals(200, sent.frames(), "it stops at the maximum: " + sent);
            assertEquals(200 * 22, sent.bytes(), sent.toString());
            receiver.configureBlocking(false);
            ByteBuffer b = ByteBuffer.allocate(64);
            int got = 0;
            while (receiver.receive(b.clear()) != null) {
                assertEquals(22, b.position(), "each datagram has the payload asked for");
                got++;
            }
            assertEquals(200, got, "200 small datagrams fit in the receive buffer: every one counted arrived");
        }
    }

    @Test
    void badArgumentsAreRefusedBeforeAnythingStarts() {
        assertThrows(IllegalArgumentException.class, () -> TapFlood.read(5, 12, 0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TapFlood.send("127.0.0.1", "127.0.0.1", 70000, 22, 1, 0));
        assertTrue(e.getMessage().contains("port 70000"), e.getMessage());
    }
}
