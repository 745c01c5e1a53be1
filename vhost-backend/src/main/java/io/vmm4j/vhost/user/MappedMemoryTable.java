package io.vmm4j.vhost.user;

import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.linux.LinuxException;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.vhost.VringAddress;
import io.vmm4j.virtio.queue.PackedRing;
import io.vmm4j.virtio.queue.RingLayout;
import io.vmm4j.virtio.queue.SplitRing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;

/**
 * The back-end's mapping of a SET_MEM_TABLE: each region's fd mapped shared at its mmap offset and
 * placed at its guest-physical address, plus the front-end's user address of each region, through
 * which ring addresses are translated ("Memory access": user addresses map to the region containing
 * them; descriptor addresses are guest addresses). Several regions may share one fd at different
 * offsets.
 *
 * <p>Everything is checked before anything is mapped: regions page-aligned and non-empty, no
 * overlap in guest or user address space, each fd a regular file opened read-write and long enough
 * for offset + size (a mapping past the end of a file would fault on first touch).
 *
 * <p>Seals are not required: real front-ends send unsealed memfds, hugetlbfs and tmpfs files. One
 * that shrinks its file under the mapping later makes the back-end's next access to the lost pages
 * fault (HotSpot throws {@link InternalError} on the accessing thread); {@link #shrunkRegion()}
 * then names the region, and the session ends.
 */
final class MappedMemoryTable implements AutoCloseable {
    private static final int O_ACCMODE = 3;

    private final List<VhostUserMessage.Region> regions;
    private final int[] fds;
    private final GuestMemory memory;

    private MappedMemoryTable(List<VhostUserMessage.Region> regions, int[] fds, GuestMemory memory) {
        this.regions = List.copyOf(regions);
        this.fds = fds.clone();
        this.memory = memory;
    }

    /**
     * Checks and maps {@code regions}, backed by {@code fds[i]} each. Takes ownership of the fds:
     * on success the mapping owns them, on failure they are closed.
     *
     * @throws VhostUserException naming the region and the value that is wrong
     */
    static MappedMemoryTable map(List<VhostUserMessage.Region> regions, int[] fds) {
        try {
            check(regions, fds);
        } catch (RuntimeException e) {
            for (int fd : fds) {
                LibC.closeQuietly(fd);
            }
            throw e;
        }
        try {
            GuestMemory.Builder builder = GuestMemory.builder();
            for (int i = 0; i < regions.size(); i++) {
                VhostUserMessage.Region r = regions.get(i);
                builder.region(r.guestAddress(), r.size(), fds[i], r.mmapOffset());
            }
            return new MappedMemoryTable(regions, fds, builder.build());
        } catch (RuntimeException e) {
            // build() closed the fds it had taken up to the failing region; close the rest that are still open
            // (safe: only this thread opens descriptors while a message is being handled)
            for (int fd : fds) {
                if (isOpen(fd)) {
                    LibC.closeQuietly(fd);
                }
            }
            throw new VhostUserException("mapping the memory table failed: " + e.getMessage(), e);
        }
    }

    private static void check(List<VhostUserMessage.Region> regions, int[] fds) {
        if (regions.isEmpty()) {
            throw new VhostUserException("SET_MEM_TABLE has no regions; the back-end needs at least one");
        }
        if (fds.length != regions.size()) {
            throw new VhostUserException("SET_MEM_TABLE has " + regions.size() + " region(s) but " + fds.length
                    + " fd(s); it takes one fd per region");
        }
        for (int i = 0; i < regions.size(); i++) {
            VhostUserMessage.Region r = regions.get(i);
            String region = "memory region " + i + " " + r;
            if (r.size() <= 0 || r.size() % GuestMemory.PAGE_SIZE != 0) {
                throw new VhostUserException(region + ": the size is not a positive multiple of the 4 KiB page");
            }
            if (r.guestAddress() % GuestMemory.PAGE_SIZE != 0 || r.mmapOffset() % GuestMemory.PAGE_SIZE != 0
                    || r.guestAddress() < 0 || r.mmapOffset() < 0) {
                throw new VhostUserException(region + ": the guest address and mmap offset must be page-aligned");
            }
            if (r.guestAddress() + r.size() < r.guestAddress() || r.mmapOffset() + r.size() < r.mmapOffset()
                    || Long.compareUnsigned(r.userAddress() + r.size(), r.userAddress()) < 0) {
                throw new VhostUserException(region + ": the region wraps around the address space");
            }
            for (int j = 0; j < i; j++) {
                VhostUserMessage.Region o = regions.get(j);
                if (overlaps(r.guestAddress(), r.size(), o.guestAddress(), o.size())) {
                    throw new VhostUserException(region + " overlaps memory region " + j + " " + o + " in guest-physical space");
                }
                if (overlaps(r.userAddress(), r.size(), o.userAddress(), o.size())) {
                    throw new VhostUserException(region + " overlaps memory region " + j + " " + o
                            + " in the front-end's address space, so ring addresses would be ambiguous");
                }
            }
            checkFd(region, fds[i], r.mmapOffset() + r.size());
        }
    }

    /** Unsigned overlap of [a, a + n) and [b, b + m), neither of which wraps. */
    private static boolean overlaps(long a, long n, long b, long m) {
        return Long.compareUnsigned(a, b + m) < 0 && Long.compareUnsigned(b, a + n) < 0;
    }

    private static void checkFd(String region, int fd, long end) {
        BasicFileAttributes attributes;
        try {
            // fstat through /proc: the fd's own inode (a memfd shows as a regular file)
            attributes = Files.readAttributes(Path.of("/proc/self/fd/" + fd), BasicFileAttributes.class);
        } catch (IOException e) {
            throw new VhostUserException(region + ": fd " + fd + " cannot be examined: " + e.getMessage());
        }
        if (!attributes.isRegularFile()) {
            throw new VhostUserException(region + ": its fd is not a regular file (a memfd or a file on hugetlbfs/tmpfs)");
        }
        if (Long.compareUnsigned(end, attributes.size()) > 0) {
            throw new VhostUserException(region + ": offset + size = 0x" + Long.toHexString(end) + " lies beyond the end of its fd (0x"
                    + Long.toHexString(attributes.size()) + " bytes); mapping it would fault");
        }
        int mode;
        try {
            mode = LibC.fcntl(fd, LibC.F_GETFL, 0) & O_ACCMODE;
        } catch (LinuxException e) {
            throw new VhostUserException(region + ": fd " + fd + " is not usable: " + e.getMessage());
        }
        if (mode != LibC.O_RDWR) {
            throw new VhostUserException(region + ": its fd is not open read-write, so it cannot be mapped shared for writing");
        }
        // no seal is demanded: DPDK's virtio_user (memfd or hugetlbfs) and QEMU's memory-backend-file pass unsealed fds. A
        // front-end that shrinks its file later makes our next access fault; that ends its session (see shrunkRegion)
    }

    /**
     * The first region whose fd is now shorter than its offset + size (the front-end shrank the file
     * under our mapping, so accesses to the cut-off pages fault), described for the log; null if
     * every region is still backed. Callable from any thread while the table is mapped.
     */
    String shrunkRegion() {
        for (int i = 0; i < regions.size(); i++) {
            VhostUserMessage.Region r = regions.get(i);
            long end = r.mmapOffset() + r.size();
            long size;
            try {
                size = Files.readAttributes(Path.of("/proc/self/fd/" + fds[i]), BasicFileAttributes.class).size();
            } catch (IOException e) {
                return "memory region " + i + " " + r + ": its fd " + fds[i] + " cannot be examined any more: " + e.getMessage();
            }
            if (Long.compareUnsigned(end, size) > 0) {
                return String.format("memory region %d %s needs 0x%x bytes of its file, which now has 0x%x", i, r, end, size);
            }
        }
        return null;
    }

    private static boolean isOpen(int fd) {
        try {
            LibC.fcntl(fd, LibC.F_GETFD, 0);
            return true;
        } catch (LinuxException e) {
            return false;
        }
    }

    GuestMemory memory() {
        return memory;
    }

    List<VhostUserMessage.Region> regions() {
        return regions;
    }

    /** Whether {@code other} describes the same regions (fds aside): a repeated SET_MEM_TABLE changes nothing. */
    boolean sameLayout(List<VhostUserMessage.Region> other) {
        return regions.equals(other);
    }

    /**
     * The guest-physical address of the front-end's user address {@code userAddress}, if
     * {@code [userAddress, +length)} lies inside one region.
     *
     * @throws VhostUserException naming {@code what} if it does not
     */
    long toGuestAddress(long userAddress, long length, String what) {
        for (VhostUserMessage.Region r : regions) {
            long offset = userAddress - r.userAddress();
            if (Long.compareUnsigned(offset, r.size()) < 0 && length <= r.size() - offset) {
                return r.guestAddress() + offset;
            }
        }
        throw new VhostUserException(String.format("%s at user address 0x%x (+%d bytes) is not inside one memory region %s",
                what, userAddress, length, regions));
    }

    /** The guest-physical addresses of a split ring's three areas (virtio 1.2 §2.7). */
    record RingAreas(long descTable, long availRing, long usedRing) {
    }

    /**
     * Translates the user addresses of vring {@code index}'s areas, at {@code size} entries, to
     * guest-physical ones; refuses the first area not inside one region, naming it.
     */
    RingAreas toGuestAreas(VringAddress user, int size, int index, RingLayout layout) {
        if (layout == RingLayout.PACKED) {
            // virtio 1.2 §2.8.10: the descriptor ring, then the driver and device event suppression structures
            return new RingAreas(
                    toGuestAddress(user.descriptorTable(), PackedRing.descriptorRingBytes(size), "vring " + index + " descriptor ring"),
                    toGuestAddress(user.availRing(), PackedRing.EVENT_SUPPRESSION_SIZE, "vring " + index + " driver event suppression area"),
                    toGuestAddress(user.usedRing(), PackedRing.EVENT_SUPPRESSION_SIZE, "vring " + index + " device event suppression area"));
        }
        return new RingAreas(
                toGuestAddress(user.descriptorTable(), SplitRing.descriptorTableBytes(size), "vring " + index + " descriptor table"),
                toGuestAddress(user.availRing(), SplitRing.availRingBytes(size), "vring " + index + " available ring"),
                toGuestAddress(user.usedRing(), SplitRing.usedRingBytes(size), "vring " + index + " used ring"));
    }

    @Override
    public void close() {
        memory.close();
    }

    @Override
    public String toString() {
        return regions.size() + " region(s) " + regions;
    }
}
