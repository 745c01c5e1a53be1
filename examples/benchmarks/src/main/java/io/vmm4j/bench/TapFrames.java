package io.vmm4j.bench;

import io.vmm4j.core.linux.IoUring;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.virtio.net.VirtioNetHeader;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ThreadLocalRandom;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * What the tap io_uring benchmarks share: a tap that is up, with IFF_VNET_HDR and no address; per
 * frame of an invocation a 12-byte virtio-net header (zero: no offloads) and a frame buffer, as a
 * guest's two-descriptor chain; the syscall baseline's two iovecs, two iovecs per frame for the
 * ring (an iovec must stay put until its SQE is submitted), and a plain ring of that many entries.
 */
final class TapFrames implements AutoCloseable {
    static final int HEADER = VirtioNetHeader.SIZE;

    final TapDevice tap;
    final int fd;
    final int frameSize;
    final Arena arena = Arena.ofShared();
    final long[] headers;
    final long[] buffers;
    /** The baseline's two iovecs, refilled per frame as the worker refills its own from each chain. */
    final MemorySegment frameIov;
    final MemorySegment batchIov;
    final IoUring ring;

    /** @param batch requests per io_uring_enter; must divide {@code frames} */
    TapFrames(String namePrefix, int frames, int frameSize, int batch) {
        if (frames % batch != 0) {
            throw new IllegalArgumentException("batch must divide " + frames + ", got " + batch);
        }
        this.frameSize = frameSize;
        tap = TapDevice.open(namePrefix + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xFFFF)), 1, HEADER);
        try {
            tap.setUp();
            fd = tap.fd(0);
            headers = new long[frames];
            buffers = new long[frames];
            MemorySegment headerBlock = arena.allocate((long) HEADER * frames, 64);
            MemorySegment bufferBlock = arena.allocate((long) frameSize * frames, 64);
            for (int i = 0; i < frames; i++) {
                headers[i] = headerBlock.address() + (long) HEADER * i;
                buffers[i] = bufferBlock.address() + (long) frameSize * i;
            }
            frameIov = arena.allocate(LibC.IOVEC, 2);
            batchIov = arena.allocate(LibC.IOVEC, 2L * frames);
            ring = IoUring.open(frames, 0);
        } catch (RuntimeException e) {
            tap.close();
            arena.close();
            throw e;
        }
    }

    /** Frame {@code i}'s header and buffer as iovecs {@code at} and {@code at + 1} of {@code iovecs}. */
    void setIovecs(MemorySegment iovecs, long at, int i) {
        LibC.setIovec(iovecs, at, headers[i], HEADER);
        LibC.setIovec(iovecs, at + 1, buffers[i], frameSize);
    }

    /** Frame {@code i}'s buffer, for filling it. */
    MemorySegment buffer(int i) {
        return MemorySegment.ofAddress(buffers[i]).reinterpret(frameSize);
    }

    /** An IPv4 Ethernet header to a made-up unicast MAC: the host drops such a frame after the tap counted it. */
    static void fakeIpv4Frame(MemorySegment frame) {
        frame.set(JAVA_BYTE, 0, (byte) 0x52);
        frame.set(JAVA_BYTE, 5, (byte) 0x01);
        frame.set(JAVA_BYTE, 6, (byte) 0x52);
        frame.set(JAVA_BYTE, 11, (byte) 0x02);
        frame.set(JAVA_BYTE, 12, (byte) 0x08);
    }

    @Override
    public void close() {
        ring.close();
        tap.close();
        arena.close();
    }
}
