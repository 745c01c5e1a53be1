package io.vmm4j.vhost.kernel;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.linux.LinuxException;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.core.memory.MemoryRegion;
import io.vmm4j.vhost.VhostBackend;
import io.vmm4j.vhost.VringAddress;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The kernel's vhost-net through ioctls on one /dev/vhost-net fd (drivers/vhost/net.c): one
 * instance serves one queue pair, vring 0 = receive, vring 1 = transmit, and
 * {@link #setBackend} attaches the tap queue whose frames the kernel worker {@code vhost-PID}
 * moves.
 */
public final class VhostKernel implements VhostBackend {
    public static final String DEVICE = "/dev/vhost-net";

    private static final VarHandle STATE_INDEX = VhostLayouts.handle(VhostLayouts.VRING_STATE, "index");
    private static final VarHandle STATE_NUM = VhostLayouts.handle(VhostLayouts.VRING_STATE, "num");
    private static final VarHandle FILE_INDEX = VhostLayouts.handle(VhostLayouts.VRING_FILE, "index");
    private static final VarHandle FILE_FD = VhostLayouts.handle(VhostLayouts.VRING_FILE, "fd");
    private static final VarHandle ADDR_INDEX = VhostLayouts.handle(VhostLayouts.VRING_ADDR, "index");
    private static final VarHandle ADDR_FLAGS = VhostLayouts.handle(VhostLayouts.VRING_ADDR, "flags");
    private static final VarHandle ADDR_DESC = VhostLayouts.handle(VhostLayouts.VRING_ADDR, "desc_user_addr");
    private static final VarHandle ADDR_USED = VhostLayouts.handle(VhostLayouts.VRING_ADDR, "used_user_addr");
    private static final VarHandle ADDR_AVAIL = VhostLayouts.handle(VhostLayouts.VRING_ADDR, "avail_user_addr");
    private static final VarHandle ADDR_LOG = VhostLayouts.handle(VhostLayouts.VRING_ADDR, "log_guest_addr");
    private static final VarHandle MEMORY_NREGIONS = VhostLayouts.handle(VhostLayouts.MEMORY, "nregions");
    private static final VarHandle REGION_GUEST_PHYS_ADDR = VhostLayouts.handle(VhostLayouts.MEMORY_REGION, "guest_phys_addr");
    private static final VarHandle REGION_MEMORY_SIZE = VhostLayouts.handle(VhostLayouts.MEMORY_REGION, "memory_size");
    private static final VarHandle REGION_USERSPACE_ADDR = VhostLayouts.handle(VhostLayouts.MEMORY_REGION, "userspace_addr");

    private final int fd;
    private boolean closed;

    private VhostKernel(int fd) {
        this.fd = fd;
    }

    /** Whether this host has the vhost-net device node. */
    public static boolean available() {
        return Files.exists(Path.of(DEVICE));
    }

    /** Opens /dev/vhost-net; the message says what to do when it is missing or not permitted. */
    public static VhostKernel open() {
        try {
            return new VhostKernel(LibC.open(DEVICE, LibC.O_RDWR | LibC.O_CLOEXEC));
        } catch (LinuxException e) {
            String why = switch (e.errno()) {
                case Errno.ENOENT -> DEVICE + " does not exist: load the module (modprobe vhost_net); if this kernel lacks "
                        + "CONFIG_VHOST_NET, use the lab VM (./vmm lab) — see ./vmm doctor";
                case Errno.EACCES, Errno.EPERM -> "opening " + DEVICE + " was refused (" + e.errnoName() + "): run as root";
                default -> "opening " + DEVICE + " failed: " + e.getMessage();
            };
            throw new VhostException(why, e);
        }
    }

    public int fd() {
        return fd;
    }

    private void call(long request, String name, MemorySegment arg) {
        int r = LibC.ioctlRaw(fd, request, arg);
        if (r < 0) {
            throw new VhostException(name + " failed on " + DEVICE + ": " + Errno.name(-r) + " (" + Errno.describe(-r) + ")"
                    + (r == -Errno.EBUSY ? "; detach the backend (VHOST_NET_SET_BACKEND -1) before changing a ring" : ""), null);
        }
    }

    @Override
    public void setOwner() {
        int r = LibC.ioctlRaw(fd, VhostIoctls.SET_OWNER, 0L);
        if (r < 0) {
            throw new VhostException("VHOST_SET_OWNER failed: " + Errno.name(-r), null);
        }
    }

    @Override
    public void resetOwner() {
        int r = LibC.ioctlRaw(fd, VhostIoctls.RESET_OWNER, 0L);
        if (r < 0) {
            throw new VhostException("VHOST_RESET_OWNER failed: " + Errno.name(-r), null);
        }
    }

    @Override
    public long getFeatures() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ValueLayout.JAVA_LONG);
            call(VhostIoctls.GET_FEATURES, "VHOST_GET_FEATURES", v);
            return v.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    @Override
    public void setFeatures(long features) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ValueLayout.JAVA_LONG);
            v.set(ValueLayout.JAVA_LONG, 0, features);
            call(VhostIoctls.SET_FEATURES, "VHOST_SET_FEATURES(0x" + Long.toHexString(features) + ")", v);
        }
    }

    /** {@code struct vhost_memory} followed by one {@code vhost_memory_region} per guest region. */
    @Override
    public void setMemTable(GuestMemory memory) {
        List<MemoryRegion> regions = memory.regions();
        try (Arena a = Arena.ofConfined()) {
            long region = VhostLayouts.MEMORY_REGION.byteSize();
            MemorySegment table = a.allocate(VhostLayouts.MEMORY.byteSize() + region * regions.size(),
                    VhostLayouts.MEMORY_REGION.byteAlignment());
            MEMORY_NREGIONS.set(table, 0L, regions.size());
            for (int i = 0; i < regions.size(); i++) {
                MemoryRegion r = regions.get(i);
                long at = VhostLayouts.MEMORY.byteSize() + region * i; // the regions follow the header; flags_padding stays 0
                REGION_GUEST_PHYS_ADDR.set(table, at, r.guestAddress());
                REGION_MEMORY_SIZE.set(table, at, r.size());
                REGION_USERSPACE_ADDR.set(table, at, r.hostAddress());
            }
            call(VhostIoctls.SET_MEM_TABLE, "VHOST_SET_MEM_TABLE(" + regions.size() + " regions)", table);
        }
    }

    private void vringState(long request, String name, int index, int num) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(VhostLayouts.VRING_STATE);
            STATE_INDEX.set(s, 0L, index);
            STATE_NUM.set(s, 0L, num);
            call(request, name + "(vring " + index + ", " + num + ")", s);
        }
    }

    @Override
    public void setVringNum(int index, int size) {
        vringState(VhostIoctls.SET_VRING_NUM, "VHOST_SET_VRING_NUM", index, size);
    }

    @Override
    public void setVringAddr(int index, VringAddress address) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(VhostLayouts.VRING_ADDR);
            ADDR_INDEX.set(s, 0L, index);
            ADDR_FLAGS.set(s, 0L, 0); // no VHOST_VRING_F_LOG: no dirty logging
            ADDR_DESC.set(s, 0L, address.descriptorTable());
            ADDR_USED.set(s, 0L, address.usedRing());
            ADDR_AVAIL.set(s, 0L, address.availRing());
            ADDR_LOG.set(s, 0L, 0L);
            call(VhostIoctls.SET_VRING_ADDR, "VHOST_SET_VRING_ADDR(vring " + index + ")", s);
        }
    }

    @Override
    public void setVringBase(int index, int base) {
        vringState(VhostIoctls.SET_VRING_BASE, "VHOST_SET_VRING_BASE", index, base);
    }

    @Override
    public int getVringBase(int index) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(VhostLayouts.VRING_STATE);
            STATE_INDEX.set(s, 0L, index);
            call(VhostIoctls.GET_VRING_BASE, "VHOST_GET_VRING_BASE(vring " + index + ")", s);
            return (int) STATE_NUM.get(s, 0L) & 0xFFFF;
        }
    }

    private void vringFile(long request, String name, int index, int fileFd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(VhostLayouts.VRING_FILE);
            FILE_INDEX.set(s, 0L, index);
            FILE_FD.set(s, 0L, fileFd);
            call(request, name + "(vring " + index + ", fd " + fileFd + ")", s);
        }
    }

    @Override
    public void setVringKick(int index, EventFd kick) {
        vringFile(VhostIoctls.SET_VRING_KICK, "VHOST_SET_VRING_KICK", index, kick == null ? -1 : kick.fd());
    }

    @Override
    public void setVringCall(int index, EventFd call) {
        vringFile(VhostIoctls.SET_VRING_CALL, "VHOST_SET_VRING_CALL", index, call == null ? -1 : call.fd());
    }

    @Override
    public void setVringErr(int index, EventFd err) {
        vringFile(VhostIoctls.SET_VRING_ERR, "VHOST_SET_VRING_ERR", index, err == null ? -1 : err.fd());
    }

    /** VHOST_NET_SET_BACKEND: the tap queue fd the worker reads and writes for vring {@code index}; -1 detaches. */
    public void setBackend(int index, int tapFd) {
        vringFile(VhostIoctls.NET_SET_BACKEND, "VHOST_NET_SET_BACKEND", index, tapFd);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            LibC.closeQuietly(fd);
        }
    }
}
