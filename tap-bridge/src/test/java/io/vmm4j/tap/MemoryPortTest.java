package io.vmm4j.tap;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.ThreadLocalRandom;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The in-memory port keeps frames whole, in order and per queue, through write/read and writev/readv alike. */
class MemoryPortTest {
    private static final int HEADER = TapDevice.VNET_HEADER_V1_SIZE;

    @Test
    void framesArriveWholeWithTheirBoundaries() {
        MemoryPort[] ports = MemoryPort.pair(1, HEADER);
        try (MemoryPort a = ports[0]; MemoryPort b = ports[1]) {
            // minimum ARP, full MTU, a 9000-byte jumbo frame (over 4 KiB), a 64 KiB GSO frame, a 1-byte runt
            int[] sizes = {HEADER + 42, HEADER + 1514, HEADER + 9014, HEADER + 65536, HEADER + 1};
            byte[][] sent = new byte[sizes.length][];
            for (int i = 0; i < sizes.length; i++) {
                sent[i] = new byte[sizes[i]];
                ThreadLocalRandom.current().nextBytes(sent[i]);
                a.send(0, sent[i]);
            }
            byte[] buf = new byte[FrameWaiter.BUFFER];
            for (int i = 0; i < sizes.length; i++) {
                int n = b.receive(0, buf);
                assertEquals(sizes[i], n, "frame " + i + " is one read of exactly its length");
                assertArrayEquals(sent[i], Arrays.copyOf(buf, n), "frame " + i);
            }
            assertEquals(-1, b.receive(0, buf), "nothing left, and no blocking");
        }
    }

    @Test
    void frameLongerThanTheBufferIsCutAndTheNextOneStaysWhole() {
        MemoryPort[] ports = MemoryPort.pair(1, HEADER);
        try (MemoryPort a = ports[0]; MemoryPort b = ports[1]) {
            byte[] big = new byte[HEADER + 1514];
            ThreadLocalRandom.current().nextBytes(big);
            a.send(0, big);
            a.send(0, Frames.withZeroHeader(HEADER, new byte[] {7, 7}));
            byte[] small = new byte[100];
            assertEquals(100, b.receive(0, small));
            assertArrayEquals(Arrays.copyOf(big, 100), small);
            assertEquals(HEADER + 2, b.receive(0, new byte[FrameWaiter.BUFFER]), "the rest of the long frame is gone");
        }
    }

    @Test
    void bothDirectionsAndQueuesAreSeparate() {
        MemoryPort[] ports = MemoryPort.pair(2, HEADER);
        try (MemoryPort a = ports[0]; MemoryPort b = ports[1]) {
            assertEquals(2, a.queueCount());
            assertNotEquals(a.name(), b.name());
            byte[] toB = Frames.withZeroHeader(HEADER, new byte[] {1, 2, 3});
            byte[] toA = Frames.withZeroHeader(HEADER, new byte[] {4, 5});
            a.send(1, toB);
            b.send(0, toA);
            byte[] buf = new byte[256];
            assertEquals(-1, b.receive(0, buf), "queue 0 of b got nothing");
            assertEquals(0, LibC.pollOne(b.fd(0), LibC.POLLIN, 0));
            assertTrue((LibC.pollOne(b.fd(1), LibC.POLLIN, 0) & LibC.POLLIN) != 0, "queue 1 of b polls readable");
            assertEquals(toB.length, b.receive(1, buf));
            assertArrayEquals(toB, Arrays.copyOf(buf, toB.length));
            assertEquals(-1, a.receive(1, buf));
            assertEquals(toA.length, a.receive(0, buf));
            assertArrayEquals(toA, Arrays.copyOf(buf, toA.length));
        }
    }

    /** The data plane's path: writev from several guest buffers, readv into several, one frame each way. */
    @Test
    void writevAndReadvWithSeveralIovecsCarryOneFrame() {
        MemoryPort[] ports = MemoryPort.pair(1, HEADER);
        try (MemoryPort a = ports[0]; MemoryPort b = ports[1]; Arena arena = Arena.ofConfined()) {
            byte[] header = new byte[HEADER];
            header[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM, just to see it carried
            byte[] ethernet = new byte[6000];
            ThreadLocalRandom.current().nextBytes(ethernet);
            MemorySegment[] out = {arena.allocateFrom(JAVA_BYTE, header),
                    arena.allocateFrom(JAVA_BYTE, Arrays.copyOfRange(ethernet, 0, 14)),
                    arena.allocateFrom(JAVA_BYTE, Arrays.copyOfRange(ethernet, 14, 4096)),
                    arena.allocateFrom(JAVA_BYTE, Arrays.copyOfRange(ethernet, 4096, ethernet.length))};
            assertEquals(HEADER + ethernet.length, LibC.writev(a.fd(0), iovecs(arena, out), out.length));
            // a second frame right behind it must not run into the first
            a.send(0, Frames.withZeroHeader(HEADER, new byte[] {9}));

            MemorySegment[] in = {arena.allocate(HEADER), arena.allocate(100), arena.allocate(8192)};
            long n = LibC.readv(b.fd(0), iovecs(arena, in), in.length);
            assertEquals(HEADER + ethernet.length, n);
            assertArrayEquals(header, in[0].toArray(JAVA_BYTE), "header lands in the first iovec");
            byte[] got = new byte[ethernet.length];
            MemorySegment.copy(in[1], JAVA_BYTE, 0, got, 0, 100);
            MemorySegment.copy(in[2], JAVA_BYTE, 0, got, 100, ethernet.length - 100);
            assertArrayEquals(ethernet, got, "frame continues across the next iovecs");

            byte[] buf = new byte[64];
            assertEquals(HEADER + 1, b.receive(0, buf), "the second frame is read on its own");
        }
    }

    @Test
    void closedPeerReadsEndOfFileAndWritesFailWithEpipe() {
        MemoryPort[] ports = MemoryPort.pair(1, HEADER);
        MemoryPort a = ports[0];
        try (MemoryPort b = ports[1]) {
            a.close();
            a.close();
            assertThrows(IllegalStateException.class, () -> a.fd(0));
            assertEquals(0, b.receive(0, new byte[64]), "end of file");
            TapException e = assertThrows(TapException.class, () -> b.send(0, new byte[HEADER + 14]));
            assertEquals(Errno.EPIPE, e.errno(), e.getMessage());
            assertTrue(e.getMessage().contains(b.name()), e.getMessage());
        }
    }

    @Test
    void rejectsFramesShorterThanTheHeaderAndBadSizes() {
        MemoryPort[] ports = MemoryPort.pair(1, HEADER);
        try (MemoryPort a = ports[0]; MemoryPort b = ports[1]) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.send(0, new byte[HEADER - 1]));
            assertTrue(e.getMessage().contains("shorter than the 12-byte vnet header"), e.getMessage());
            assertThrows(IndexOutOfBoundsException.class, () -> b.fd(1));
        }
        assertThrows(IllegalArgumentException.class, () -> MemoryPort.pair(0, HEADER));
        assertThrows(IllegalArgumentException.class, () -> MemoryPort.pair(1, 8));
    }

    private static MemorySegment iovecs(Arena arena, MemorySegment[] buffers) {
        MemorySegment iov = arena.allocate(LibC.IOVEC, buffers.length);
        for (int i = 0; i < buffers.length; i++) {
            LibC.setIovec(iov, i, buffers[i]);
        }
        return iov;
    }
}
