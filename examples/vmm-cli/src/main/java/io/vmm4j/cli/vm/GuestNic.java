package io.vmm4j.cli.vm;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.driver.ConfigAccess;
import io.vmm4j.virtio.driver.GuestLocalApic;
import io.vmm4j.virtio.driver.PciFirmware;
import io.vmm4j.virtio.driver.VirtioNetDriver;
import io.vmm4j.virtio.driver.VirtioPciDriver;
import io.vmm4j.virtio.driver.net.GuestNetStack;
import io.vmm4j.virtio.driver.net.Ipv4Address;
import io.vmm4j.virtio.driver.net.MacAddress;

import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The Java guest's network interface as its software sees it: the virtio-net driver, the IPv4
 * stack on top, transmit steering over the queue pairs (UDP by source port, the rest on pair 0,
 * as a NIC's steering would) and what receiving counts. Brought up again after a reset or a
 * reboot (fresh rings from index 0); the counts go on.
 */
final class GuestNic {
    /** The first UDP source port of the per-pair flows: flow p leaves from this + p and is steered to pair p. */
    static final int UDP_SOURCE_PORT_BASE = 40000;
    /** virtio-net's first MSI-X vector: the configuration interrupt (link changes). */
    static final int CONFIG_VECTOR = 0x30;

    private final VmOptions options;
    private final Bus mmio;
    private final GuestMemory memory;
    private final GuestLocalApic apic;
    private final PrintStream log;
    private volatile VirtioNetDriver driver;
    private GuestNetStack stack;
    private VirtioNetDriver.FrameHandler receiver;
    private long acked;
    private int pairs;
    private int maxRxBuffers;
    private long txRingFull;
    private int udpReceived;
    // the link as the driver last read it (vCPU thread writes, anyone reads)
    private volatile boolean linkUp;
    private final List<String> linkChanges = new CopyOnWriteArrayList<>();
    private long configInterruptsSeen;

    GuestNic(VmOptions options, Bus mmio, GuestMemory memory, GuestLocalApic apic, PrintStream log) {
        this.options = options;
        this.mmio = mmio;
        this.memory = memory;
        this.apic = apic;
        this.log = log;
    }

    /** Brings the driver up on the NIC firmware found at {@code device}, and the IPv4 stack on top. */
    void bringUp(ConfigAccess cfg, PciFirmware.Device device, GuestAllocator allocator) {
        VirtioPciDriver pci = new VirtioPciDriver(cfg, mmio, memory, allocator, device);
        VirtioNetDriver d = new VirtioNetDriver(pci, memory, allocator, apic);
        acked = d.bringUp(new VirtioNetDriver.Options(options.wantedFeatures(), options.pairs(), 2048, 256, CONFIG_VECTOR));
        pairs = d.pairs();
        driver = d;
        configInterruptsSeen = apic.count(CONFIG_VECTOR);
        linkUp = d.linkUp();
        MacAddress mac = MacAddress.of(d.mac());
        int ip = Ipv4Address.parseValue(options.guestIp());
        log.printf("guest: virtio-net up: mac %s, ip %s, mtu %d, link %s, %d queue pair(s), rings %d/%d %s%n", mac, options.guestIp(),
                d.mtu(), linkUp ? "up" : "down", pairs, d.rxQueueSize(0), d.txQueueSize(0), d.packedRings() ? "packed" : "split");
        stack = new GuestNetStack(mac, ip, d.mtu(), (frame, off, len) -> {
            if (!d.transmit(pairFor(frame, off, len), frame, off, len) && txRingFull++ == 0) {
                log.println("guest: transmit ring full, frame dropped (counted from now on, not logged)");
            }
        });
        countUdpReceived();
        receiver = (pair, frame, length, buffers) -> {
            maxRxBuffers = Math.max(maxRxBuffers, buffers);
            stack.receive(frame, 0, length);
        };
    }

    /** Resets the NIC (device_status 0) and brings it up again on fresh rings, as a driver reload does. */
    void reload(ConfigAccess cfg, PciFirmware.Device device, GuestAllocator allocator) {
        driver.pci().reset();
        bringUp(cfg, device, allocator);
    }

    /**
     * After a configuration interrupt, reads the link state again, as Linux's virtio_net does from
     * its config work, and notes a change.
     */
    void watchLink() {
        long config = apic.count(CONFIG_VECTOR);
        if (config != configInterruptsSeen) {
            configInterruptsSeen = config;
            boolean up = driver.linkUp();
            if (up != linkUp) {
                linkUp = up;
                linkChanges.add(up ? "up" : "down");
                log.printf("guest: link is %s (configuration interrupt, STATUS read from the device)%n", up ? "up" : "down");
            }
        }
    }

    /** The link as the driver last read it. */
    boolean linkUp() {
        return linkUp;
    }

    /** Each link change the driver noticed, in order ("down", "up"). */
    List<String> linkChanges() {
        return List.copyOf(linkChanges);
    }

    VirtioNetDriver driver() {
        return driver;
    }

    GuestNetStack stack() {
        return stack;
    }

    /** Takes the frames the device has used since the last call into the stack; returns how many. */
    int poll() {
        return driver.pollReceive(receiver);
    }

    /** From now on, UDP datagrams to the guest are only counted (the flows of the ping run). */
    void countUdpReceived() {
        stack.setUdpListener((srcIp, srcPort, dstPort, payload) -> udpReceived++);
    }

    /** VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, then steer flows over the pairs left; returns the ack. */
    int setActivePairs(int n) {
        int ack = driver.setQueuePairs(n);
        if (ack == 0) {
            pairs = n;
        }
        return ack;
    }

    long acked() {
        return acked;
    }

    /** Queue pairs the guest steers over. */
    int pairs() {
        return pairs;
    }

    int maxRxBuffers() {
        return maxRxBuffers;
    }

    /** Frames dropped because the transmit ring was full. */
    long txRingFull() {
        return txRingFull;
    }

    int udpReceived() {
        return udpReceived;
    }

    long echoRequestsAnswered() {
        return stack == null ? 0 : stack.echoRequestsAnswered();
    }

    /** What the stack dropped since it came up, by reason (the non-zero counts), in DropReason's order. */
    Map<String, Long> drops() {
        Map<String, Long> drops = new LinkedHashMap<>();
        if (stack != null) {
            stack.dropReasons().forEach((reason, n) -> drops.put(reason.name(), n));
        }
        return drops;
    }

    /** Spreads flows over the queue pairs the way a NIC's transmit steering would: UDP by source port, the rest on pair 0. */
    private int pairFor(byte[] frame, int off, int len) {
        if (pairs == 1 || len < 14 + 20 + 4) {
            return 0;
        }
        boolean ipv4 = (frame[off + 12] & 0xFF) == 0x08 && frame[off + 13] == 0;
        boolean udp = ipv4 && frame[off + 14 + 9] == 17;
        if (!udp) {
            return 0;
        }
        int ihl = (frame[off + 14] & 0x0F) * 4;
        int srcPort = ((frame[off + 14 + ihl] & 0xFF) << 8) | (frame[off + 14 + ihl + 1] & 0xFF);
        return Math.floorMod(srcPort - UDP_SOURCE_PORT_BASE, pairs);
    }
}
