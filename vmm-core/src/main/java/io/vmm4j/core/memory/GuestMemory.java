package io.vmm4j.core.memory;

import io.vmm4j.core.linux.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A guest-physical address space made of {@link MemoryRegion}s, each a memfd mapped shared.
 *
 * <p>Every access is translated and bounds-checked first: an access that does not lie wholly
 * inside one region throws {@link GuestMemoryException} and touches nothing. Multi-byte values are
 * little-endian (virtio 1.x is little-endian, spec 1.4). Ring indices use the acquire/release
 * accessors, which also require natural alignment. Thread-safe for accesses; {@link #close()}
 * only once every user has stopped (afterwards accesses fail instead of touching unmapped memory).
 */
public final class GuestMemory implements AutoCloseable {
    /** Regions are page-granular, as mmap offsets and KVM memory slots require. */
    public static final long PAGE_SIZE = 4096;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U16_ALIGNED = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final VarHandle U32_ALIGNED = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final MemoryRegion[] regions;
    private final Arena arena;
    private final Set<Integer> fds;

    private GuestMemory(MemoryRegion[] regions, Arena arena, Set<Integer> fds) {
        this.regions = regions;
        this.arena = arena;
        this.fds = fds;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The regions in ascending guest-physical order. */
    public List<MemoryRegion> regions() {
        return List.of(regions);
    }

    /** Total bytes of guest memory. */
    public long size() {
        long total = 0;
        for (MemoryRegion r : regions) {
            total += r.size();
        }
        return total;
    }

    /** Whether {@code [address, address + length)} lies wholly inside one region. */
    public boolean contains(long address, long length) {
        return find(address, length) != null;
    }

    /** The region holding {@code [address, address + length)}, or throws. */
    public MemoryRegion region(long address, long length) {
        MemoryRegion r = find(address, length);
        if (r == null) {
            throw outside(address, length);
        }
        return r;
    }

    private MemoryRegion find(long address, long length) {
        for (MemoryRegion r : regions) {
            if (r.contains(address, length)) {
                return r;
            }
        }
        return null;
    }

    private GuestMemoryException outside(long address, long length) {
        return new GuestMemoryException(String.format(
                "guest access [0x%x, +%d) is outside guest memory %s: a guest address or length is wrong",
                address, length, describeRegions()), address, length);
    }

    private String describeRegions() {
        StringBuilder sb = new StringBuilder("{");
        for (int i = 0; i < regions.length; i++) {
            sb.append(i == 0 ? "" : ", ").append(String.format("[0x%x, 0x%x)", regions[i].guestAddress(), regions[i].guestEnd()));
        }
        return sb.append('}').toString();
    }

    /** A view of {@code [address, address + length)}; it cannot reach beyond that range. */
    public MemorySegment slice(long address, long length) {
        MemoryRegion r = region(address, length);
        return r.segment().asSlice(address - r.guestAddress(), length);
    }

    /** Host virtual address of a guest-physical address (what vhost's SET_VRING_ADDR wants). */
    public long hostAddress(long address, long length) {
        MemoryRegion r = region(address, length);
        return r.hostAddress() + (address - r.guestAddress());
    }

    public byte readByte(long address) {
        MemoryRegion r = region(address, 1);
        return r.segment().get(ValueLayout.JAVA_BYTE, address - r.guestAddress());
    }

    public short readShort(long address) {
        MemoryRegion r = region(address, 2);
        return r.segment().get(U16, address - r.guestAddress());
    }

    public int readInt(long address) {
        MemoryRegion r = region(address, 4);
        return r.segment().get(U32, address - r.guestAddress());
    }

    public long readLong(long address) {
        MemoryRegion r = region(address, 8);
        return r.segment().get(U64, address - r.guestAddress());
    }

    public void writeByte(long address, byte value) {
        MemoryRegion r = region(address, 1);
        r.segment().set(ValueLayout.JAVA_BYTE, address - r.guestAddress(), value);
    }

    public void writeShort(long address, short value) {
        MemoryRegion r = region(address, 2);
        r.segment().set(U16, address - r.guestAddress(), value);
    }

    public void writeInt(long address, int value) {
        MemoryRegion r = region(address, 4);
        r.segment().set(U32, address - r.guestAddress(), value);
    }

    public void writeLong(long address, long value) {
        MemoryRegion r = region(address, 8);
        r.segment().set(U64, address - r.guestAddress(), value);
    }

    /** Copies {@code length} guest bytes at {@code address} into {@code dst[offset..]}. */
    public void read(long address, byte[] dst, int offset, int length) {
        MemoryRegion r = region(address, length);
        MemorySegment.copy(r.segment(), ValueLayout.JAVA_BYTE, address - r.guestAddress(), dst, offset, length);
    }

    /** Copies {@code src[offset..offset+length)} into guest memory at {@code address}. */
    public void write(long address, byte[] src, int offset, int length) {
        MemoryRegion r = region(address, length);
        MemorySegment.copy(src, offset, r.segment(), ValueLayout.JAVA_BYTE, address - r.guestAddress(), length);
    }

    /** Copies all of {@code src} into guest memory at {@code address}. */
    public void write(long address, MemorySegment src) {
        MemorySegment.copy(src, 0, slice(address, src.byteSize()), 0, src.byteSize());
    }

    /** Copies guest memory at {@code address} into all of {@code dst}. */
    public void read(long address, MemorySegment dst) {
        MemorySegment.copy(slice(address, dst.byteSize()), 0, dst, 0, dst.byteSize());
    }

    public void fill(long address, long length, byte value) {
        slice(address, length).fill(value);
    }

    /** Reads a ring index with acquire semantics (virtio 2.7.13: read avail idx before the ring entries). */
    public short loadAcquireShort(long address) {
        MemoryRegion r = aligned(address, 2);
        return (short) U16_ALIGNED.getAcquire(r.segment(), address - r.guestAddress());
    }

    /** Writes a ring index with release semantics (virtio 2.7.13: ring entries are visible before idx). */
    public void storeReleaseShort(long address, short value) {
        MemoryRegion r = aligned(address, 2);
        U16_ALIGNED.setRelease(r.segment(), address - r.guestAddress(), value);
    }

    public int loadAcquireInt(long address) {
        MemoryRegion r = aligned(address, 4);
        return (int) U32_ALIGNED.getAcquire(r.segment(), address - r.guestAddress());
    }

    public void storeReleaseInt(long address, int value) {
        MemoryRegion r = aligned(address, 4);
        U32_ALIGNED.setRelease(r.segment(), address - r.guestAddress(), value);
    }

    private MemoryRegion aligned(long address, int size) {
        if ((address & (size - 1)) != 0) {
            throw new GuestMemoryException(String.format(
                    "guest address 0x%x is not %d-byte aligned for an atomic access", address, size), address, size);
        }
        return region(address, size);
    }

    /** Unmaps every region and closes the memfds. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
            for (int fd : fds) {
                LibC.closeQuietly(fd);
            }
        }
    }

    @Override
    public String toString() {
        return "GuestMemory" + List.of(regions);
    }

    /** Collects regions, then maps them all at {@link #build()}. */
    public static final class Builder {
        private Builder() { // GuestMemory.builder()
        }


        private record Spec(long guestAddress, long size, int fd, long fdOffset, String name) {
        }

        private final List<Spec> specs = new ArrayList<>();

        /** A region backed by a new memfd of its own. */
        public Builder region(long guestAddress, long size) {
            return add(new Spec(guestAddress, size, -1, 0, "vmm4j-ram@" + Long.toHexString(guestAddress)));
        }

        /**
         * A region backed by an existing fd at {@code fdOffset}; the memory takes ownership of the
         * fd (several regions may share one fd).
         */
        public Builder region(long guestAddress, long size, int fd, long fdOffset) {
            if (fd < 0) {
                throw new IllegalArgumentException("fd must be a valid descriptor, was " + fd);
            }
            return add(new Spec(guestAddress, size, fd, fdOffset, null));
        }

        private Builder add(Spec s) {
            if (s.size <= 0 || s.size % PAGE_SIZE != 0) {
                throw new IllegalArgumentException("region size must be a positive multiple of " + PAGE_SIZE + ", was " + s.size);
            }
            if (s.guestAddress % PAGE_SIZE != 0 || s.guestAddress < 0) {
                throw new IllegalArgumentException(String.format("region address 0x%x is not page aligned", s.guestAddress));
            }
            if (s.fdOffset % PAGE_SIZE != 0 || s.fdOffset < 0) {
                throw new IllegalArgumentException(String.format("fd offset 0x%x is not page aligned", s.fdOffset));
            }
            if (s.guestAddress + s.size < s.guestAddress) {
                throw new IllegalArgumentException(String.format("region [0x%x, +0x%x) wraps the address space", s.guestAddress, s.size));
            }
            for (Spec o : specs) {
                if (s.guestAddress < o.guestAddress + o.size && o.guestAddress < s.guestAddress + s.size) {
                    throw new IllegalArgumentException(String.format("region [0x%x, 0x%x) overlaps [0x%x, 0x%x)",
                            s.guestAddress, s.guestAddress + s.size, o.guestAddress, o.guestAddress + o.size));
                }
            }
            specs.add(s);
            return this;
        }

        /** Creates the memfds and maps every region. */
        public GuestMemory build() {
            if (specs.isEmpty()) {
                throw new IllegalStateException("guest memory needs at least one region");
            }
            Arena arena = Arena.ofShared();
            Set<Integer> fds = new HashSet<>();
            List<MemoryRegion> mapped = new ArrayList<>();
            try {
                for (Spec s : specs) {
                    int fd = s.fd;
                    if (fd < 0) {
                        fd = LibC.memfdCreate(s.name, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING);
                        fds.add(fd);
                        LibC.ftruncate(fd, s.size);
                        // a process we hand the fd to (a vhost-user back-end) can rely on its size: nobody can
                        // shrink it under a mapping, which would fault on the next access
                        LibC.fcntl(fd, LibC.F_ADD_SEALS, LibC.F_SEAL_SHRINK | LibC.F_SEAL_GROW);
                    } else {
                        fds.add(fd);
                    }
                    MemorySegment raw = LibC.mmap(s.size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, s.fdOffset);
                    MemorySegment owned = raw.reinterpret(s.size, arena, LibC::munmap);
                    mapped.add(new MemoryRegion(s.guestAddress, s.size, fd, s.fdOffset, owned));
                }
            } catch (RuntimeException e) {
                arena.close();
                fds.forEach(LibC::closeQuietly);
                throw e;
            }
            mapped.sort(Comparator.comparingLong(MemoryRegion::guestAddress));
            return new GuestMemory(mapped.toArray(MemoryRegion[]::new), arena, fds);
        }
    }
}
