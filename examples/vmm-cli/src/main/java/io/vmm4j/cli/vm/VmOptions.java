package io.vmm4j.cli.vm;

/**
 * What the toy VMM is asked to do.
 *
 * @param backend     emulated, emulated-sync, vhost-net or vhost-user
 * @param port        auto (a tap if CAP_NET_ADMIN, else in-memory), tap or memory
 * @param tap         tap name; empty lets the kernel pick (vmm4j%d)
 * @param bridge      a Linux bridge to attach the tap to, or null
 * @param guestIp     the guest's IPv4 address
 * @param hostIp      the host side's address with prefix length, e.g. 10.0.2.2/24; given without a prefix it gets
 *                    {@value #DEFAULT_HOST_PREFIX}, the prefix of the default address, so that the tap's address
 *                    always covers the guest's subnet
 * @param pingTarget  whom the guest pings (default: the host address)
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
 * @param vcpu        who runs the guest: {@code java} (the Java frontend on a thread) or {@code kvm} (the C guest on a KVM vCPU)
 */
public record VmOptions(String backend, String port, String tap, String bridge, String guestIp, String hostIp, String pingTarget,
                        int pairs, int count, int pingSize, int intervalMs, int udpPort, int serveSeconds, String mac, int mtu, int memoryMiB,
                        long wantedFeatures, String socket, int queueSize, String vcpu) {
    /** The data queue size when nobody asks for another. */
    public static final int DEFAULT_QUEUE_SIZE = 256;
    public static final String VCPU_JAVA = "java";
    public static final String VCPU_KVM = "kvm";
    /** The prefix length of a host address given without one (the default is 10.0.2.2/24). */
    public static final int DEFAULT_HOST_PREFIX = 24;

    public VmOptions {
        // an address without a prefix would go on the tap as a /32, a subnet without the guest in it
        if (hostIp != null && !hostIp.contains("/")) {
            hostIp = hostIp + "/" + DEFAULT_HOST_PREFIX;
        }
    }

    /** Options with the default queue size and the Java frontend. */
    public VmOptions(String backend, String port, String tap, String bridge, String guestIp, String hostIp, String pingTarget,
                     int pairs, int count, int pingSize, int intervalMs, int udpPort, int serveSeconds, String mac, int mtu,
                     int memoryMiB, long wantedFeatures, String socket) {
        this(backend, port, tap, bridge, guestIp, hostIp, pingTarget, pairs, count, pingSize, intervalMs, udpPort, serveSeconds, mac,
                mtu, memoryMiB, wantedFeatures, socket, DEFAULT_QUEUE_SIZE, VCPU_JAVA);
    }

    /** Options with a queue size and the Java frontend. */
    public VmOptions(String backend, String port, String tap, String bridge, String guestIp, String hostIp, String pingTarget,
                     int pairs, int count, int pingSize, int intervalMs, int udpPort, int serveSeconds, String mac, int mtu,
                     int memoryMiB, long wantedFeatures, String socket, int queueSize) {
        this(backend, port, tap, bridge, guestIp, hostIp, pingTarget, pairs, count, pingSize, intervalMs, udpPort, serveSeconds, mac,
                mtu, memoryMiB, wantedFeatures, socket, queueSize, VCPU_JAVA);
    }

    /** Options with the default queue size and a chosen vCPU. */
    public VmOptions(String backend, String port, String tap, String bridge, String guestIp, String hostIp, String pingTarget,
                     int pairs, int count, int pingSize, int intervalMs, int udpPort, int serveSeconds, String mac, int mtu,
                     int memoryMiB, long wantedFeatures, String socket, String vcpu) {
        this(backend, port, tap, bridge, guestIp, hostIp, pingTarget, pairs, count, pingSize, intervalMs, udpPort, serveSeconds, mac,
                mtu, memoryMiB, wantedFeatures, socket, DEFAULT_QUEUE_SIZE, vcpu);
    }

    public boolean kvm() {
        return VCPU_KVM.equals(vcpu);
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
}
