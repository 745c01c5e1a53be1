package io.vmm4j.virtio.driver.queue;

import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Guest memory with canary pages around it, as vmm-core's GuestMemoryTest sets it up. One memfd
 * holds {@code [canary][region A][canary][region B][canary]}; A and B are adjacent in guest-physical
 * space (B starts where A ends) but separated by a canary page in the file, so an access that slips
 * past an edge or across the A/B boundary lands on canary bytes, which this class watches through
 * its own mapping of the whole file. The memfd is sparse: only touched pages cost memory.
 */
public final class CanaryGuestMemory implements AutoCloseable {
    public static final long PAGE = GuestMemory.PAGE_SIZE;
    public static final byte CANARY = (byte) 0xCC;
    /** Guest-physical start of region A (unless the constructor with a base says otherwise). */
    public static final long A = 0x100000;

    private final long base;
    private final long aSize;
    private final long bSize;
    private final GuestMemory memory;
    private final MemorySegment wholeFile;

    public CanaryGuestMemory(long aSize, long bSize) {
        this(A, aSize, bSize);
    }

    /** Region A from guest-physical {@code base}, B right after it. */
    public CanaryGuestMemory(long base, long aSize, long bSize) {
        this.base = base;
        this.aSize = aSize;
        this.bSize = bSize;
        long fileSize = 3 * PAGE + aSize + bSize;
        int fd = LibC.memfdCreate("virtqueue-test", LibC.MFD_CLOEXEC);
        LibC.ftruncate(fd, fileSize);
        wholeFile = LibC.mmap(fileSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
        for (long offset : canaryOffsets()) {
            wholeFile.asSlice(offset, PAGE).fill(CANARY);
        }
        memory = GuestMemory.builder().region(base, aSize, fd, PAGE).region(base + aSize, bSize, fd, 2 * PAGE + aSize).build();
    }

    /** 64 KiB in A and 16 KiB in B: room for rings, buffers and tables of small queues. */
    public CanaryGuestMemory() {
        this(64 * 1024, 16 * 1024);
    }

    private long[] canaryOffsets() {
        return new long[] {0, PAGE + aSize, 2 * PAGE + aSize + bSize};
    }

    public GuestMemory memory() {
        return memory;
    }

    public long aEnd() {
        return base + aSize;
    }

    public long b() {
        return base + aSize;
    }

    public long bEnd() {
        return base + aSize + bSize;
    }

    /** Hands out region A only, so B stays free for tests that straddle the boundary. */
    public GuestAllocator allocatorOverA() {
        return new GuestAllocator(base, aSize);
    }

    public void assertCanariesIntact() {
        for (long offset : canaryOffsets()) {
            MemorySegment canary = wholeFile.asSlice(offset, PAGE);
            for (long i = 0; i < PAGE; i++) {
                if (canary.get(ValueLayout.JAVA_BYTE, i) != CANARY) {
                    throw new AssertionError("canary byte changed at file offset 0x" + Long.toHexString(offset + i));
                }
            }
        }
    }

    /** A copy of every byte of A and B, read through the test's own mapping. */
    public byte[] snapshot() {
        if (aSize + bSize > 16 * 1024 * 1024) {
            throw new IllegalStateException("snapshot is for small memories");
        }
        byte[] a = wholeFile.asSlice(PAGE, aSize).toArray(ValueLayout.JAVA_BYTE);
        byte[] b = wholeFile.asSlice(2 * PAGE + aSize, bSize).toArray(ValueLayout.JAVA_BYTE);
        byte[] all = new byte[a.length + b.length];
        System.arraycopy(a, 0, all, 0, a.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    /** Guest bytes at {@code address}. */
    public byte[] read(long address, long length) {
        return memory.slice(address, length).toArray(ValueLayout.JAVA_BYTE);
    }

    @Override
    public void close() {
        memory.close();
        LibC.munmap(wholeFile);
    }
}
