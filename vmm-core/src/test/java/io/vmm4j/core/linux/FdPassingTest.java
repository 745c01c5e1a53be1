package io.vmm4j.core.linux;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.core.memory.MemoryRegion;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SCM_RIGHTS for real: a memfd region and an eventfd cross a socketpair into a child process. */
class FdPassingTest {
    @Test
    void childMapsThePassedMemfdAndBothSidesSeeEachOthersBytes() throws Exception {
        long gpa = 0x10_0000;
        long size = 64 * 1024;
        try (GuestMemory memory = GuestMemory.builder().region(gpa, size).build();
             EventFd doorbell = EventFd.create();
             Arena arena = Arena.ofConfined()) {
            for (int i = 0; i < 256; i++) {
                memory.writeByte(gpa + i, (byte) (i ^ 0x5A));
            }
            MemoryRegion region = memory.regions().getFirst();
            UnixSocket[] pair = UnixSocket.pair();
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            String classpath = System.getProperty("java.class.path");
            try (UnixSocket parent = pair[0];
                 ChildProcess child = ChildProcess.spawn(
                         List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp", classpath, FdPassingChild.class.getName()),
                         System.getenv(), Map.of(3, pair[1].fd()))) {
                pair[1].close(); // the child holds its own copy now
                MemorySegment header = arena.allocate(24);
                header.set(ValueLayout.JAVA_LONG, 0, gpa);
                header.set(ValueLayout.JAVA_LONG, 8, size);
                header.set(ValueLayout.JAVA_LONG, 16, region.fdOffset());
                parent.send(header, region.fd(), doorbell.fd());

                MemorySegment reply = arena.allocate(3);
                long n = parent.receiveFully(reply);
                assertEquals(0, child.waitFor(), "child exit code (its stderr says why)");
                assertEquals(3, n, "reply length");
                assertArrayEquals("ok\0".getBytes(), reply.toArray(ValueLayout.JAVA_BYTE));
                assertEquals(0xC0FFEE_CAFEL, memory.readLong(gpa + size - 8), "the child's write is visible to the parent");
                assertEquals(1, doorbell.drain(), "the child signalled the passed eventfd");
            }
        }
    }

    @Test
    void receiverLearnsWhenMoreFdsArriveThanItMadeRoomFor() {
        UnixSocket[] pair = UnixSocket.pair();
        try (UnixSocket a = pair[0]; UnixSocket b = pair[1]; Arena arena = Arena.ofConfined();
             EventFd e1 = EventFd.create(); EventFd e2 = EventFd.create(); EventFd e3 = EventFd.create()) {
            a.send(arena.allocateFrom("x"), e1.fd(), e2.fd(), e3.fd());
            UnixSocket.Received r = b.receive(arena.allocate(8), 1);
            assertTrue(r.fdsTruncated(), "MSG_CTRUNC is reported");
            assertTrue(r.fds().length <= 2, "at most the room given (kernel rounds the buffer up to 8 bytes)");
            for (int fd : r.fds()) {
                LibC.close(fd);
            }
        }
    }

    @Test
    void listenerAcceptsAConnectionAtAPath() throws Exception {
        Path dir = Files.createTempDirectory("vmm4j-sock");
        Path path = dir.resolve("s.sock");
        try (UnixListener listener = UnixListener.bind(path); Arena arena = Arena.ofConfined()) {
            Thread client = Thread.ofPlatform().start(() -> {
                try (UnixSocket s = UnixSocket.connect(path); Arena a = Arena.ofConfined()) {
                    s.send(a.allocateFrom("hello"));
                }
            });
            try (UnixSocket server = listener.accept()) {
                MemorySegment buf = arena.allocate(6);
                assertEquals(6, server.receiveFully(buf));
                assertEquals("hello", buf.getString(0));
            }
            client.join();
        }
        assertTrue(Files.notExists(path), "the socket file is removed on close");
    }
}
