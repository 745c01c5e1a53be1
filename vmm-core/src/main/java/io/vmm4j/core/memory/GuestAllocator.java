package io.vmm4j.core.memory;

/** A bump allocator of guest-physical space for the guest-side driver (rings, buffers). Not thread-safe. */
public final class GuestAllocator {
    private final long base;
    private final long limit;
    private long next;

    /** Hands out addresses in {@code [base, base + size)}. */
    public GuestAllocator(long base, long size) {
        if (size <= 0) {
            throw new IllegalArgumentException("allocator size must be positive, was " + size);
        }
        this.base = base;
        this.limit = base + size;
        this.next = base;
    }

    /** Reserves {@code size} bytes aligned to {@code alignment} (a power of two) and returns the guest address. */
    public long allocate(long size, long alignment) {
        if (size <= 0) {
            throw new IllegalArgumentException("allocation size must be positive, was " + size);
        }
        if (alignment <= 0 || Long.bitCount(alignment) != 1) {
            throw new IllegalArgumentException("alignment must be a power of two, was " + alignment);
        }
        long start = (next + alignment - 1) & -alignment;
        if (start < next || start > limit || size > limit - start) {
            throw new IllegalStateException(String.format(
                    "guest allocator exhausted: %d bytes aligned to %d do not fit in [0x%x, 0x%x) with 0x%x used; give the guest more memory",
                    size, alignment, base, limit, next - base));
        }
        next = start + size;
        return start;
    }

    /** Bytes handed out so far, including alignment padding. */
    public long used() {
        return next - base;
    }
}
