package io.vmm4j.core.memory;

import java.lang.foreign.MemorySegment;

/**
 * One guest-physical range backed by a memfd at an offset and mapped shared into this process.
 * The fd, offset and host address are what vhost-user (SET_MEM_TABLE) and vhost-net / KVM memory
 * tables need.
 *
 * @param guestAddress guest-physical start
 * @param size         bytes
 * @param fd           the backing memfd (owned by the {@link GuestMemory})
 * @param fdOffset     where in the memfd the region starts
 * @param segment      the host mapping, exactly {@code size} bytes
 */
public record MemoryRegion(long guestAddress, long size, int fd, long fdOffset, MemorySegment segment) {
    /** Host virtual address of the region's first byte (vhost's userspace_addr). */
    public long hostAddress() {
        return segment.address();
    }

    /** One past the last guest-physical address (unsigned). */
    public long guestEnd() {
        return guestAddress + size;
    }

    /** Whether {@code [address, address + length)} lies wholly inside this region. */
    public boolean contains(long address, long length) {
        long offset = address - guestAddress;
        // unsigned: an address below the region wraps to a huge offset
        return Long.compareUnsigned(offset, size) < 0 && length >= 0 && length <= size - offset;
    }

    @Override
    public String toString() {
        return String.format("[0x%x, 0x%x) fd=%d+0x%x host=0x%x", guestAddress, guestEnd(), fd, fdOffset, hostAddress());
    }
}
