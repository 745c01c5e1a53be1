package io.vmm4j.tap;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.linux.LinuxException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * A Linux TAP device opened with a virtio-net header on every frame (IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR), one /dev/net/tun fd per queue (IFF_MULTI_QUEUE when there is more than one).
 * The device lives while any of its fds is open; {@link #close()} removes it.
 *
 * <p>The fds come from TUNSETIFF ioctls through FFM. Link state, addresses and namespaces go
 * through iproute2's {@code ip} instead of rtnetlink: they are control-path operations run a few
 * times per device, and binding rtnetlink would mean a netlink socket, message and attribute
 * encoding and ack parsing in Java for no gain in speed. The {@code ip} command line is also what
 * an operator runs to reproduce a failure, so every failure names the command and its stderr.
 *
 * <p>The tap is created in this process's network namespace and can then be moved; its fds keep
 * working there, and queues can still be detached and attached. Creating it needs CAP_NET_ADMIN
 * (or a tap pre-created for this user); without it, use {@link MemoryPort}.
 *
 * <p>Control methods are synchronized; {@link #fd(int)} is for the data plane and does not lock.
 */
public final class TapDevice extends QueueFdPort {
    /** tun.c: MAX_TAP_QUEUES, 256 (the netdev is allocated with that many tx and rx queues). */
    public static final int MAX_QUEUES = 256;
    /** sizeof(struct virtio_net_hdr); tun.c TUNSETVNETHDRSZ rejects anything smaller with EINVAL. */
    public static final int MIN_VNET_HEADER_SIZE = 10;
    /** sizeof(struct virtio_net_hdr_v1), the header of a VIRTIO_F_VERSION_1 device. */
    public static final int VNET_HEADER_V1_SIZE = 12;
    /** The name pattern used when none is given; the kernel replaces %d with the first free number. */
    public static final String DEFAULT_NAME_PATTERN = "vmm4j%d";
    static final String TUN_PATH = "/dev/net/tun";
    // if.h struct ifreq: ifr_name[IFNAMSIZ], then the union whose ifr_flags is a short
    private static final long IFR_FLAGS_OFFSET = TunIoctls.IFNAMSIZ;
    // asm-generic/errno-base.h; tun.c returns it when a tap already has MAX_TAP_QUEUES queues
    private static final int E2BIG = 7;

    private final boolean[] attached;
    private String namespace;
    private int offloads;

    private TapDevice(String name, int[] fds, int vnetHeaderSize) {
        super("tap", name, fds, vnetHeaderSize);
        this.attached = new boolean[fds.length];
        Arrays.fill(attached, true);
    }

    /**
     * Creates (or attaches to) the tap {@code name} in this process's network namespace with
     * {@code queues} queue fds and a {@code vnetHeaderSize}-byte virtio-net header on every frame.
     *
     * @param name the interface name; empty lets the kernel pick {@value #DEFAULT_NAME_PATTERN}
     * @param queues 1 to {@value #MAX_QUEUES}; more than one opens a multi-queue tap
     * @param vnetHeaderSize 12 for virtio_net_hdr_v1 (VIRTIO_F_VERSION_1), 10 for the legacy header
     * @throws TapException with the remedy when the tap cannot be created (no CAP_NET_ADMIN, no tun module, ...)
     */
    public static TapDevice open(String name, int queues, int vnetHeaderSize) {
        String requested = name.isEmpty() ? DEFAULT_NAME_PATTERN : InterfaceName.requireValid(name, "tap");
        if (queues < 1 || queues > MAX_QUEUES) {
            throw new IllegalArgumentException("tap " + requested + " cannot have " + queues + " queues: Linux allows 1 to "
                    + MAX_QUEUES);
        }
        if (vnetHeaderSize < MIN_VNET_HEADER_SIZE) {
            throw new IllegalArgumentException("vnet header size " + vnetHeaderSize + " is below the " + MIN_VNET_HEADER_SIZE
                    + " bytes of struct virtio_net_hdr: use 12 (virtio_net_hdr_v1) or 10 (legacy)");
        }
        short flags = (short) (TunIoctls.IFF_TAP | TunIoctls.IFF_NO_PI | TunIoctls.IFF_VNET_HDR
                | (queues > 1 ? TunIoctls.IFF_MULTI_QUEUE : 0));
        int[] fds = new int[queues];
        Arrays.fill(fds, -1);
        String resolved = requested;
        try (Arena arena = Arena.ofConfined()) {
            for (int q = 0; q < queues; q++) {
                fds[q] = openTun();
                // each further TUNSETIFF on the resolved name attaches one more queue (tun.c tun_set_iff)
                resolved = setIff(fds[q], resolved, flags, queues, arena);
            }
            // tun.c: vnet_hdr_sz belongs to the device, so one queue's fd sets it for all
            MemorySegment size = arena.allocateFrom(JAVA_INT, vnetHeaderSize);
            int r = LibC.ioctlRaw(fds[0], TunIoctls.TUNSETVNETHDRSZ, size);
            if (r < 0) {
                throw new TapException("setting a " + vnetHeaderSize + "-byte vnet header on tap " + resolved
                        + " failed (TUNSETVNETHDRSZ): " + Errno.name(-r) + " (" + Errno.describe(-r) + ")", -r, null);
            }
            return new TapDevice(resolved, fds, vnetHeaderSize);
        } catch (RuntimeException e) {
            for (int fd : fds) {
                LibC.closeQuietly(fd);
            }
            throw e;
        }
    }

    private static int openTun() {
        try {
            return LibC.open(TUN_PATH, LibC.O_RDWR | LibC.O_NONBLOCK | LibC.O_CLOEXEC);
        } catch (LinuxException e) {
            throw openFailure(e.errno(), e);
        }
    }

    /** TUNSETIFF on {@code fd}; returns the name the kernel gave the device (resolving a %d pattern). */
    private static String setIff(int fd, String name, short flags, int queues, Arena arena) {
        MemorySegment ifr = ifreq(arena, name, flags);
        int r = LibC.ioctlRaw(fd, TunIoctls.TUNSETIFF, ifr);
        if (r < 0) {
            throw setIffFailure(name, queues, -r, null);
        }
        return ifr.asSlice(0, TunIoctls.IFNAMSIZ).getString(0, StandardCharsets.US_ASCII);
    }

    private static MemorySegment ifreq(Arena arena, String name, short flags) {
        MemorySegment ifr = arena.allocate(TunIoctls.SIZEOF_IFREQ, 8);
        byte[] bytes = name.getBytes(StandardCharsets.UTF_8);
        MemorySegment.copy(bytes, 0, ifr, JAVA_BYTE, 0, bytes.length);
        ifr.set(JAVA_SHORT, IFR_FLAGS_OFFSET, flags);
        return ifr;
    }

    /** The exception for a failed open of /dev/net/tun, with what to do about {@code errno}. */
    static TapException openFailure(int errno, Throwable cause) {
        String remedy = switch (errno) {
            case Errno.ENOENT, Errno.ENODEV -> "the tun driver is not available: load the tun module (modprobe tun)";
            case Errno.EACCES, Errno.EPERM -> "this user may not open it: run as root, make /dev/net/tun accessible to "
                    + "this user, or use the in-memory port (MemoryPort)";
            default -> "check that /dev/net/tun is the tun character device (10, 200)";
        };
        return new TapException("cannot open " + TUN_PATH + ": " + Errno.name(errno) + " (" + Errno.describe(errno) + "); "
                + remedy, errno, cause);
    }

    /** The exception for a failed TUNSETIFF on tap {@code name}, with what to do about {@code errno}. */
    static TapException setIffFailure(String name, int queues, int errno, Throwable cause) {
        String what = switch (errno) {
            case Errno.EPERM -> "creating tap " + name + " needs CAP_NET_ADMIN: run as root or grant the capability, "
                    + "have root create it for this user beforehand (ip tuntap add dev " + name + " mode tap vnet_hdr"
                    + (queues > 1 ? " multi_queue" : "") + " user USER), or use the in-memory port (MemoryPort)";
            case Errno.EBUSY -> "tap " + name + " is already open by someone else (a single-queue tap takes one "
                    + "opener): close the other user or choose another name";
            case Errno.EINVAL -> "a device named " + name + " already exists and is not a "
                    + (queues > 1 ? "multi-queue" : "single-queue") + " tap with a vnet header: choose another name or "
                    + "delete it (ip link del " + name + ")";
            case E2BIG -> "tap " + name + " already has " + MAX_QUEUES + " queues, the most Linux allows";
            default -> "creating tap " + name + " failed";
        };
        return new TapException(what + " (TUNSETIFF: " + Errno.name(errno) + ", " + Errno.describe(errno) + ")", errno, cause);
    }

    /** The vnet header size the kernel uses for this tap (TUNGETVNETHDRSZ), to check what {@link #open} set. */
    public synchronized int kernelVnetHeaderSize() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment size = arena.allocate(JAVA_INT);
            checkOpen();
            // tun.c: device ioctls work on any queue's fd, attached or detached
            LibC.ioctl(fds[0], TunIoctls.TUNGETVNETHDRSZ, size, "TUNGETVNETHDRSZ");
            return size.get(JAVA_INT, 0);
        }
    }

    /** The namespace the tap was moved to with {@link #moveToNamespace}, or null if it is still in ours. */
    public synchronized String namespace() {
        return namespace;
    }

    /** The TUN_F_* flags last set with {@link #setOffloads}; 0 until then (the kernel computes every checksum). */
    public synchronized int offloads() {
        return offloads;
    }

    /**
     * TUNSETOFFLOAD: the kernel may hand this tap's reader frames with partial checksums
     * (TUN_F_CSUM) and TCP segments up to 64 KiB (TUN_F_TSO4/6, TUN_F_TSO_ECN), described in the
     * vnet header; what it may not hand over it checksums and segments in software first.
     */
    @Override
    public synchronized void setOffloads(int tunFlags) {
        checkOpen();
        // if_tun.h: TUNSETOFFLOAD takes TUN_F_* of what the reader can receive, by value; any queue's fd will do
        int r = LibC.ioctlRaw(fds[0], TunIoctls.TUNSETOFFLOAD, Integer.toUnsignedLong(tunFlags));
        if (r < 0) {
            String hint = -r == Errno.EINVAL
                    ? ": tun.c accepts TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN and TUN_F_UFO only together with TUN_F_CSUM, "
                    + "TUN_F_TSO_ECN only with TUN_F_TSO4 or TUN_F_TSO6, and no flag this kernel does not know; derive "
                    + "the flags from the guest's VIRTIO_NET_F_GUEST_* features the way virtio-net defines them"
                    : "";
            throw new TapException("TUNSETOFFLOAD " + describeOffloads(tunFlags) + " on tap " + name + " failed: "
                    + Errno.name(-r) + " (" + Errno.describe(-r) + ")" + hint, -r, null);
        }
        offloads = tunFlags;
    }

    /**
     * TUNSETQUEUE: attaches ({@code enabled}) or detaches a queue of a multi-queue tap. The kernel
     * steers no frames to a detached queue: detaching drops what was queued on it, and its fd then
     * reads EAGAIN and never polls readable. Writes on it still reach the device (tun.c does not
     * check), so the data plane must stop transmitting on a disabled queue itself.
     *
     * @throws TapException with errno EINVAL if the queue is already in the requested state
     */
    @Override
    public synchronized void setQueueEnabled(int queue, boolean enabled) {
        checkQueue(queue);
        if (fds.length == 1) {
            throw new IllegalStateException("tap " + name + " has one queue and was opened without IFF_MULTI_QUEUE, "
                    + "so it cannot attach or detach queues: open it with more than one queue");
        }
        checkOpen();
        try (Arena arena = Arena.ofConfined()) {
            short flags = enabled ? TunIoctls.IFF_ATTACH_QUEUE : TunIoctls.IFF_DETACH_QUEUE;
            int r = LibC.ioctlRaw(fds[queue], TunIoctls.TUNSETQUEUE, ifreq(arena, "", flags));
            if (r < 0) {
                String hint = -r == Errno.EINVAL ? " (the queue is already " + (enabled ? "attached" : "detached") + ")" : "";
                throw new TapException((enabled ? "attaching" : "detaching") + " queue " + queue + " of tap " + name
                        + " failed (TUNSETQUEUE): " + Errno.name(-r) + " (" + Errno.describe(-r) + ")" + hint, -r, null);
            }
            attached[queue] = enabled;
        }
    }

    /** Whether {@code queue} is attached (true from {@link #open} until a {@link #setQueueEnabled}(queue, false)). */
    public synchronized boolean isQueueEnabled(int queue) {
        checkQueue(queue);
        return attached[queue];
    }

    /** Sets the link up ({@code ip link set dev NAME up}), in the tap's current namespace. */
    public synchronized void setUp() {
        checkOpen();
        HostCommand.runIp("set tap " + name + " up", namespace, "link", "set", "dev", name, "up");
    }

    /** Sets the link MTU ({@code ip link set dev NAME mtu N}), so jumbo frames can pass. */
    public synchronized void setMtu(int mtu) {
        checkOpen();
        HostCommand.runIp("set the MTU of tap " + name + " to " + mtu, namespace, "link", "set", "dev", name, "mtu",
                Integer.toString(mtu));
    }

    /** A tap takes and gives checksum and segmentation offloads through its vnet header. */
    @Override
    public boolean supportsOffloads() {
        return true;
    }

    /** Adds an address, e.g. {@code 10.77.1.1/24} ({@code ip addr add CIDR dev NAME}), in the tap's current namespace. */
    public synchronized void addAddress(String cidr) {
        checkOpen();
        HostCommand.runIp("add address " + cidr + " to tap " + name, namespace, "addr", "add", cidr, "dev", name);
    }

    /**
     * Moves the tap into the named network namespace ({@code ip link set dev NAME netns NETNS}).
     * The queue fds keep working: a tun fd is bound to the device, not to a namespace. Later
     * {@link #setUp()} and {@link #addAddress} run in that namespace.
     */
    public synchronized void moveToNamespace(String netns) {
        checkOpen();
        HostCommand.runIp("move tap " + name + " to network namespace " + netns, namespace,
                "link", "set", "dev", name, "netns", netns);
        namespace = netns;
    }

    /** Moves the tap into {@code netns}; see {@link #moveToNamespace(String)}. */
    public void moveToNamespace(NetNamespace netns) {
        moveToNamespace(netns.name());
    }

    /** Closes every queue fd; the kernel deletes the (non-persistent) tap with the last one. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        List<LinuxException> failures = new ArrayList<>();
        for (int fd : fds) {
            try {
                LibC.close(fd);
            } catch (LinuxException e) {
                failures.add(e);
            }
        }
        if (!failures.isEmpty()) {
            throw new TapException("closing tap " + name + " failed: " + failures.getFirst().getMessage(),
                    failures.getFirst().errno(), failures.getFirst());
        }
    }

    @Override
    public String toString() {
        return describe(namespace == null ? "" : ", in netns " + namespace);
    }

    /** "TUN_F_CSUM|TUN_F_TSO4", or "none", for messages. */
    public static String describeOffloads(int tunFlags) {
        if (tunFlags == 0) {
            return "none";
        }
        String[] names = {"TUN_F_CSUM", "TUN_F_TSO4", "TUN_F_TSO6", "TUN_F_TSO_ECN", "TUN_F_UFO"};
        StringBuilder text = new StringBuilder();
        int rest = tunFlags;
        for (int bit = 0; bit < names.length; bit++) {
            if ((tunFlags & (1 << bit)) != 0) {
                text.append(text.isEmpty() ? "" : "|").append(names[bit]);
                rest &= ~(1 << bit);
            }
        }
        if (rest != 0) {
            text.append(text.isEmpty() ? "" : "|").append("0x").append(Integer.toHexString(rest));
        }
        return text.toString();
    }
}
