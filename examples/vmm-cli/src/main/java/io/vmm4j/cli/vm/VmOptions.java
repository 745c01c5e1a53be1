package io.vmm4j.cli.vm;

import io.vmm4j.virtio.queue.RingLayout;

import java.nio.file.Path;

/**
 * What the toy VMM is asked to do. Build it with {@link #builder()}: every value not set keeps the
 * default {@code ./vmm run} has for its flag.
 *
 * @param dataPlane   who moves the frames ({@code --backend})
 * @param port        auto (a tap if CAP_NET_ADMIN, else in-memory), tap or memory
 * @param tap         tap name; null or empty lets the kernel pick (vmm4j%d)
 * @param bridge      a Linux bridge to attach the tap to, or null
 * @param guestIp     the guest's IPv4 address
 * @param hostIp      the host side's address with prefix length, e.g. 10.0.2.2/24; given without a prefix it gets
 *                    {@value #DEFAULT_HOST_PREFIX}, the prefix of the default address, so that the tap's address
 *                    always covers the guest's subnet
 * @param pingTarget  whom the guest pings (null: the host address)
 * @param pairs       virtio-net queue pairs (and tap queues)
 * @param count       pings to send (0: none)
 * @param pingSize    ICMP payload bytes per ping
 * @param intervalMs  time between pings
 * @param udpPort     when > 0, the guest also sends {@code count} UDP datagrams per queue pair to this host port and counts echoes
 * @param serveSeconds stay up this long after the pings, answering the host
 * @param mac         the NIC's MAC address
 * @param mtu         the NIC's MTU
 * @param memoryMiB   guest RAM
 * @param wantedFeatures virtio-net features the Java guest driver asks for
 * @param socket      vhost-user socket path, or null
 * @param queueSize   the maximum size of each virtio-net data queue (a power of two)
 * @param vcpu        who runs the guest: the Java frontend on a thread, or the C guest on a KVM vCPU
 * @param kernel      a Linux bzImage to boot directly on KVM instead of the C guest ({@code --kernel}), or null
 * @param initrd      the initramfs for {@code kernel}, or null
 * @param append      the kernel command line ({@code --append}); null for {@link #DEFAULT_APPEND}
 * @param cpus        vCPUs of a Linux guest
 * @param reconnectSeconds with vhost-user as a client: retry the back-end's socket this often after it goes (0: never)
 * @param socketListen with vhost-user: the VMM listens on {@code socket} and the back-end connects (and reconnects) to it
 * @param ring        the ring layouts the NIC offers: PACKED adds VIRTIO_F_RING_PACKED where the data plane serves it
 * @param pollMicros  with the emulated data plane: each I/O thread busy-polls its rings this long after its last frame (0: never)
 * @param flood       a flood the C guest on KVM runs after its pings, or null for none
 */
public record VmOptions(DataPlane dataPlane, Port port, String tap, String bridge, String guestIp, String hostIp, String pingTarget,
                        int pairs, int count, int pingSize, int intervalMs, int udpPort, int serveSeconds, String mac, int mtu,
                        int memoryMiB, long wantedFeatures, String socket, int queueSize, Vcpu vcpu, Path kernel,
                        Path initrd, String append, int cpus, int reconnectSeconds, boolean socketListen,
                        RingLayout ring, int pollMicros, FloodWorkload flood) {
    // the defaults of ./vmm run's flags (picocli takes them from here)
    public static final String DEFAULT_GUEST_IP = "10.0.2.15";
    public static final String DEFAULT_HOST_IP = "10.0.2.2/24";
    public static final int DEFAULT_PAIRS = 1;
    public static final int DEFAULT_COUNT = 3;
    public static final int DEFAULT_PING_SIZE = 56;
    public static final int DEFAULT_INTERVAL_MS = 200;
    public static final String DEFAULT_MAC = "52:54:00:12:34:56";
    public static final int DEFAULT_MTU = 1500;
    public static final int DEFAULT_MEMORY_MIB = 128;
    /** The data queue size when nobody asks for another. */
    public static final int DEFAULT_QUEUE_SIZE = 256;
    /**
     * The kernel command line of a Linux guest without --append: the console on our 16550, reboot
     * through the i8042 (which ends the run), no reboot delay after a panic, and no probing for a
     * keyboard and mouse that are not there.
     */
    public static final String DEFAULT_APPEND = "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd";
    /** The prefix length of a host address given without one (the default is 10.0.2.2/24). */
    public static final int DEFAULT_HOST_PREFIX = 24;

    /** The NIC's port {@code --port} asks for. */
    public enum Port implements OptionValue {
        /** A tap with CAP_NET_ADMIN, else the in-memory port. */
        AUTO,
        TAP,
        /** An in-memory port whose peer is a small IPv4 host inside the VMM. */
        MEMORY,
        /** Counts and drops what the guest sends, fills every receive buffer with a 64-byte UDP frame; answers nothing. */
        DISCARD
    }

    /** Who runs the guest ({@code --vcpu}). */
    public enum Vcpu implements OptionValue {
        /** The Java frontend on a thread. */
        JAVA,
        /** The C guest on a KVM vCPU. */
        KVM
    }

    public VmOptions {
        // an address without a prefix would go on the tap as a /32, a subnet without the guest in it
        if (hostIp != null && !hostIp.contains("/")) {
            hostIp = hostIp + "/" + DEFAULT_HOST_PREFIX;
        }
    }

    /** Options with every default of {@code ./vmm run}; set what differs. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder starting from these options. */
    public Builder toBuilder() {
        return new Builder(this);
    }

    public boolean kvm() {
        return vcpu == Vcpu.KVM;
    }

    /** Whether the guest is a Linux kernel ({@code --kernel}) rather than one of ours. */
    public boolean linux() {
        return kernel != null;
    }

    public String hostAddress() {
        int slash = hostIp.indexOf('/');
        return slash < 0 ? hostIp : hostIp.substring(0, slash);
    }

    public int prefixLength() {
        return Integer.parseInt(hostIp.substring(hostIp.indexOf('/') + 1));
    }

    public String target() {
        return pingTarget == null || pingTarget.isBlank() ? hostAddress() : pingTarget;
    }

    /** Sets the values that differ from the defaults; each setter is named after its component. */
    public static final class Builder {
        private DataPlane dataPlane = DataPlane.EMULATED;
        private Port port = Port.AUTO;
        private String tap;
        private String bridge;
        private String guestIp = DEFAULT_GUEST_IP;
        private String hostIp = DEFAULT_HOST_IP;
        private String pingTarget;
        private int pairs = DEFAULT_PAIRS;
        private int count = DEFAULT_COUNT;
        private int pingSize = DEFAULT_PING_SIZE;
        private int intervalMs = DEFAULT_INTERVAL_MS;
        private int udpPort;
        private int serveSeconds;
        private String mac = DEFAULT_MAC;
        private int mtu = DEFAULT_MTU;
        private int memoryMiB = DEFAULT_MEMORY_MIB;
        private long wantedFeatures = GuestDefaults.features();
        private String socket;
        private int queueSize = DEFAULT_QUEUE_SIZE;
        private Vcpu vcpu = Vcpu.JAVA;
        private Path kernel;
        private Path initrd;
        private String append;
        private int cpus = 1;
        private int reconnectSeconds;
        private boolean socketListen;
        private RingLayout ring = RingLayout.SPLIT;
        private int pollMicros;
        private FloodWorkload flood;

        private Builder() {
        }

        private Builder(VmOptions o) {
            dataPlane = o.dataPlane;
            port = o.port;
            tap = o.tap;
            bridge = o.bridge;
            guestIp = o.guestIp;
            hostIp = o.hostIp;
            pingTarget = o.pingTarget;
            pairs = o.pairs;
            count = o.count;
            pingSize = o.pingSize;
            intervalMs = o.intervalMs;
            udpPort = o.udpPort;
            serveSeconds = o.serveSeconds;
            mac = o.mac;
            mtu = o.mtu;
            memoryMiB = o.memoryMiB;
            wantedFeatures = o.wantedFeatures;
            socket = o.socket;
            queueSize = o.queueSize;
            vcpu = o.vcpu;
            kernel = o.kernel;
            initrd = o.initrd;
            append = o.append;
            reconnectSeconds = o.reconnectSeconds;
            ring = o.ring;
            pollMicros = o.pollMicros;
            socketListen = o.socketListen;
            cpus = o.cpus;
            flood = o.flood;
        }

        public Builder dataPlane(DataPlane value) {
            dataPlane = value;
            return this;
        }

        public Builder port(Port value) {
            port = value;
            return this;
        }

        public Builder tap(String value) {
            tap = value;
            return this;
        }

        public Builder bridge(String value) {
            bridge = value;
            return this;
        }

        public Builder guestIp(String value) {
            guestIp = value;
            return this;
        }

        public Builder hostIp(String value) {
            hostIp = value;
            return this;
        }

        public Builder pingTarget(String value) {
            pingTarget = value;
            return this;
        }

        public Builder pairs(int value) {
            pairs = value;
            return this;
        }

        public Builder count(int value) {
            count = value;
            return this;
        }

        public Builder pingSize(int value) {
            pingSize = value;
            return this;
        }

        public Builder intervalMs(int value) {
            intervalMs = value;
            return this;
        }

        public Builder udpPort(int value) {
            udpPort = value;
            return this;
        }

        public Builder serveSeconds(int value) {
            serveSeconds = value;
            return this;
        }

        public Builder mac(String value) {
            mac = value;
            return this;
        }

        public Builder mtu(int value) {
            mtu = value;
            return this;
        }

        public Builder memoryMiB(int value) {
            memoryMiB = value;
            return this;
        }

        public Builder wantedFeatures(long value) {
            wantedFeatures = value;
            return this;
        }

        public Builder socket(String value) {
            socket = value;
            return this;
        }

        public Builder queueSize(int value) {
            queueSize = value;
            return this;
        }

        public Builder vcpu(Vcpu value) {
            vcpu = value;
            return this;
        }

        public Builder kernel(Path value) {
            kernel = value;
            return this;
        }

        public Builder initrd(Path value) {
            initrd = value;
            return this;
        }

        public Builder append(String value) {
            append = value;
            return this;
        }

        public Builder cpus(int value) {
            cpus = value;
            return this;
        }

        public Builder reconnectSeconds(int value) {
            reconnectSeconds = value;
            return this;
        }

        public Builder socketListen(boolean value) {
            socketListen = value;
            return this;
        }

        public Builder ring(RingLayout value) {
            ring = value;
            return this;
        }

        public Builder pollMicros(int value) {
            pollMicros = value;
            return this;
        }

        public Builder flood(FloodWorkload value) {
            flood = value;
            return this;
        }

        public VmOptions build() {
            return new VmOptions(dataPlane, port, tap, bridge, guestIp, hostIp, pingTarget, pairs, count, pingSize, intervalMs, udpPort,
                    serveSeconds, mac, mtu, memoryMiB, wantedFeatures, socket, queueSize, vcpu, kernel, initrd, append, cpus,
                    reconnectSeconds, socketListen, ring, pollMicros, flood);
        }
    }
}
