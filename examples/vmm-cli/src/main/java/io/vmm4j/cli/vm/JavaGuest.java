package io.vmm4j.cli.vm;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.driver.ConfigAccess;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.driver.GuestLocalApic;
import io.vmm4j.virtio.driver.PciFirmware;
import io.vmm4j.virtio.driver.VirtioNetDriver;
import io.vmm4j.virtio.driver.VirtioPciDriver;
import io.vmm4j.virtio.driver.net.GuestNetStack;
import io.vmm4j.virtio.driver.net.Ipv4Address;
import io.vmm4j.virtio.driver.net.MacAddress;
import io.vmm4j.virtio.driver.net.PingReply;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.VirtioNet;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * The toy VMM's guest, written in Java and run on a vCPU thread: firmware-style PCI enumeration,
 * then the virtio drivers and a tiny IPv4 stack. It reaches the devices only through PIO/MMIO
 * accesses on the buses and through guest memory, like code in a real guest.
 */
final class JavaGuest implements Runnable, GuestRunner {
    static final long PCI_WINDOW = 0xC000_0000L;
    static final long PCI_WINDOW_SIZE = 0x1000_0000L;
    private static final int UDP_SOURCE_PORT_BASE = 40000;
    static final int UDP_STREAM_PORT = 39999;
    /** virtio-net's first MSI-X vector: the configuration interrupt (link changes). */
    private static final int NET_FIRST_VECTOR = 0x30;

    private final VmOptions options;
    private final Bus pio;
    private final Bus mmio;
    private final GuestMemory memory;
    private final GuestLocalApic apic;
    private final PrintStream log;
    private GuestAllocator allocator;
    private volatile boolean stop;
    private volatile CompletableFuture<Void> rebootRequest;
    private Runnable platformReset = () -> { };
    private long configInterruptsSeen;
    volatile boolean linkUp;
    final List<String> linkChanges = new CopyOnWriteArrayList<>();
    volatile int reboots;
    private long echoRequestsBeforeReboot;

    final List<Double> rttMs = new ArrayList<>();
    int pingsSent;
    int udpSent;
    int udpReceived;
    long acked;
    int pairs;
    String rng = "not found";
    volatile String error;
    volatile VirtioNetDriver net;

    JavaGuest(VmOptions options, Bus pio, Bus mmio, GuestMemory memory, GuestLocalApic apic, PrintStream log) {
        this.options = options;
        this.pio = pio;
        this.mmio = mmio;
        this.memory = memory;
        this.apic = apic;
        this.log = log;
        // the first MiB stays free, as on a PC
        this.allocator = new GuestAllocator(0x10_0000, memory.size() - 0x10_0000);
    }

    @Override
    public void requestStop() {
        stop = true;
    }

    /** What the platform does to the devices when the guest reboots (the VMM resets them). */
    void onPlatformReset(Runnable reset) {
        this.platformReset = reset;
    }

    /**
     * Asks the guest to reboot (system_reset): at its next wake-up the vCPU resets the platform,
     * then runs firmware and drivers again. The future completes once the devices are reset.
     */
    CompletableFuture<Void> requestReboot() {
        CompletableFuture<Void> done = new CompletableFuture<>();
        rebootRequest = done;
        return done;
    }

    /**
     * Between two waits of the vCPU loops: carries out a pending reboot, and reads the link state
     * again after a configuration interrupt, as Linux's virtio_net does from its config work.
     * Returns the driver to use from now on (a new one after a reboot).
     */
    private VirtioNetDriver tend(VirtioNetDriver driver) throws InterruptedException {
        CompletableFuture<Void> reboot = rebootRequest;
        if (reboot != null) {
            rebootRequest = null;
            log.println("guest: system reset: rebooting (firmware, then the drivers again)");
            platformReset.run();
            reboot.complete(null);
            allocator = new GuestAllocator(0x10_0000, memory.size() - 0x10_0000);
            reboots++;
            echoRequestsBeforeReboot = echoRequestsAnswered();
            bringUp();
            return net;
        }
        long config = apic.count(NET_FIRST_VECTOR);
        if (config != configInterruptsSeen) {
            configInterruptsSeen = config;
            boolean up = driver.linkUp();
            if (up != linkUp) {
                linkUp = up;
                linkChanges.add(up ? "up" : "down");
                log.printf("guest: link is %s (configuration interrupt, STATUS read from the device)%n", up ? "up" : "down");
            }
        }
        return driver;
    }

    @Override
    public GuestReport report() {
        return new GuestReport(acked, pairs, pingsSent, List.copyOf(rttMs), udpSent, udpReceived, maxRxBuffers, echoRequestsAnswered(),
                rng, error);
    }

    @Override
    public void run() {
        try {
            boot();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            error = e.getMessage();
            log.println("guest: stopped: " + e.getMessage());
        }
    }

    private GuestNetStack stack;
    private VirtioNetDriver.FrameHandler rx;
    int maxRxBuffers;

    private void boot() throws InterruptedException {
        bringUp();
        ping(options.count(), options.target(), options.pingSize());
        serve(options.serveSeconds());
    }

    /** Firmware, then the drivers: the reuse device once, then virtio-net and the IPv4 stack. */
    void bringUp() throws InterruptedException {
        ConfigAccess cfg = ConfigAccess.ports(pio);
        List<PciFirmware.Device> devices = PciFirmware.enumerateAndAssign(cfg, PCI_WINDOW, PCI_WINDOW_SIZE);
        PciFirmware.Device nic = null;
        PciFirmware.Device entropy = null;
        for (PciFirmware.Device d : devices) {
            log.printf("firmware: 00:%02x.0 %04x:%04x class %06x BAR0 %s BAR2 %s%n", d.slot(), d.vendorId(), d.deviceId(),
                    d.classCode(), bar(d, 0), bar(d, 2));
            if (d.vendorId() == 0x1AF4 && d.deviceId() == 0x1040 + VirtioNet.DEVICE_TYPE) {
                nic = d;
            } else if (d.vendorId() == 0x1AF4 && d.deviceId() == 0x1044) {
                entropy = d;
            }
        }
        if (entropy != null) {
            readEntropy(cfg, entropy);
        }
        if (nic == null) {
            throw new IllegalStateException("no virtio-net device on the PCI bus");
        }
        this.cfg = cfg;
        this.nic = nic;
        netUp();
    }

    private ConfigAccess cfg;
    private PciFirmware.Device nic;

    /** The virtio-net driver and the IPv4 stack on top (again after a reset: fresh rings from index 0). */
    private void netUp() {
        VirtioPciDriver pci = new VirtioPciDriver(cfg, mmio, memory, allocator, nic);
        VirtioNetDriver driver = new VirtioNetDriver(pci, memory, allocator, apic);
        acked = driver.bringUp(new VirtioNetDriver.Options(options.wantedFeatures(), options.pairs(), 2048, 256, NET_FIRST_VECTOR));
        pairs = driver.pairs();
        net = driver;
        configInterruptsSeen = apic.count(NET_FIRST_VECTOR);
        linkUp = driver.linkUp();
        MacAddress mac = MacAddress.of(driver.mac());
        int ip = Ipv4Address.parseValue(options.guestIp());
        log.printf("guest: virtio-net up: mac %s, ip %s, mtu %d, link %s, %d queue pair(s)%n", mac, options.guestIp(),
                driver.mtu(), linkUp ? "up" : "down", pairs);
        stack = new GuestNetStack(mac, ip, driver.mtu(), (frame, off, len) -> {
            if (!driver.transmit(pairFor(frame, off, len), frame, off, len) && txRingFull++ == 0) {
                log.println("guest: transmit ring full, frame dropped (counted from now on, not logged)");
            }
        });
        stack.setUdpListener((srcIp, srcPort, dstPort, payload) -> udpReceived++);
        rx = (pair, frame, length, buffers) -> {
            maxRxBuffers = Math.max(maxRxBuffers, buffers);
            stack.receive(frame, 0, length);
        };
    }

    /** What a numbered UDP stream saw: how many echoes came back once, and how many more than once. */
    record StreamResult(int sent, int echoedOnce, int duplicates, int missing) {
    }

    /**
     * Sends datagrams numbered 0..count-1 to the host's {@code port}, one every {@code intervalMicros},
     * and counts the echoes: each number must come back exactly once. {@code onSent} sees each
     * number after it left (tests switch data planes mid-stream from it).
     */
    StreamResult udpStream(int count, int port, long intervalMicros, java.util.function.IntConsumer onSent)
            throws InterruptedException {
        VirtioNetDriver driver = net;
        int host = Ipv4Address.parseValue(options.hostAddress());
        int[] seen = new int[count];
        stack.setUdpListener((srcIp, srcPort, dstPort, payload) -> {
            if (dstPort == UDP_STREAM_PORT && payload.length >= 4) {
                int seq = ((payload[0] & 0xFF) << 24) | ((payload[1] & 0xFF) << 16) | ((payload[2] & 0xFF) << 8) | (payload[3] & 0xFF);
                if (seq >= 0 && seq < count) {
                    seen[seq]++;
                }
            }
        });
        byte[] payload = new byte[64];
        long interval = TimeUnit.MICROSECONDS.toNanos(intervalMicros);
        long next = System.nanoTime();
        int sent = 0;
        long deadline = Long.MAX_VALUE;
        while (!stop && System.nanoTime() < deadline) {
            long seenInterrupts = driver.interruptsSeen();
            driver.pollReceive(rx);
            long now = System.nanoTime();
            if (sent < count && now >= next && !driver.canTransmit(0)) {
                // the transmit ring is full: a driver stops its queue and waits for completions instead of dropping
                driver.awaitInterrupt(seenInterrupts, TimeUnit.MILLISECONDS.toNanos(1));
                continue;
            }
            if (sent < count && now >= next) {
                payload[0] = (byte) (sent >>> 24);
                payload[1] = (byte) (sent >>> 16);
                payload[2] = (byte) (sent >>> 8);
                payload[3] = (byte) sent;
                stack.sendUdp(host, UDP_STREAM_PORT, port, payload);
                onSent.accept(sent);
                sent++;
                next = now + interval;
                if (sent == count) {
                    deadline = now + TimeUnit.SECONDS.toNanos(10);
                }
            }
            if (sent == count && java.util.Arrays.stream(seen).allMatch(n -> n > 0)) {
                break;
            }
            long wait = sent < count ? Math.max(0, next - System.nanoTime()) : TimeUnit.MILLISECONDS.toNanos(5);
            driver.awaitInterrupt(seenInterrupts, Math.min(wait, TimeUnit.MILLISECONDS.toNanos(5)));
        }
        driver.pollReceive(rx);
        stack.setUdpListener((srcIp, srcPort, dstPort, p) -> udpReceived++);
        int once = 0;
        int dups = 0;
        int missing = 0;
        for (int n : seen) {
            once += n >= 1 ? 1 : 0;
            dups += Math.max(0, n - 1);
            missing += n == 0 ? 1 : 0;
        }
        return new StreamResult(sent, once, dups, missing);
    }

    /** Port the comparison workloads use on both sides. */
    static final int BENCH_PORT = 9;

    /**
     * Transmit workload: sends UDP datagrams of {@code payload} bytes to the host's discard port as
     * fast as the transmit ring allows, for {@code nanos}; returns how many left the guest.
     */
    long floodUdp(long nanos, int payload) throws InterruptedException {
        VirtioNetDriver driver = net;
        int host = Ipv4Address.parseValue(options.hostAddress());
        byte[] data = new byte[payload];
        long before = driver.framesOut();
        // the first datagram resolves the host's MAC; everything the guest sends is counted, ARP included
        stack.sendUdp(host, BENCH_PORT, BENCH_PORT, data);
        long sent;
        long deadline = System.nanoTime() + nanos;
        while (!stop && System.nanoTime() < deadline) {
            long seen = driver.interruptsSeen();
            long out = driver.framesOut();
            stack.sendUdp(host, BENCH_PORT, BENCH_PORT, data);
            if (driver.framesOut() == out) {
                // the transmit ring is full: reap and wait for the device to use some
                driver.pollReceive(rx);
                driver.awaitInterrupt(seen, TimeUnit.MILLISECONDS.toNanos(1));
            }
        }
        sent = driver.framesOut() - before;
        return sent;
    }

    private volatile long benchReceived;
    long txRingFull;

    /**
     * Receive workload: counts UDP datagrams to the bench port until {@code done}; returns the count.
     * {@code counting} runs once the count is zero and the listener is in place.
     */
    long countUdp(java.util.function.BooleanSupplier done, Runnable counting) throws InterruptedException {
        VirtioNetDriver driver = net;
        benchReceived = 0;
        stack.setUdpListener((srcIp, srcPort, dstPort, payload) -> {
            if (dstPort == BENCH_PORT) {
                benchReceived++;
            }
        });
        counting.run();
        while (!stop && !done.getAsBoolean()) {
            long seen = driver.interruptsSeen();
            if (driver.pollReceive(rx) == 0) {
                driver.awaitInterrupt(seen, TimeUnit.MILLISECONDS.toNanos(1));
            }
        }
        driver.pollReceive(rx);
        stack.setUdpListener((srcIp, srcPort, dstPort, p) -> udpReceived++);
        return benchReceived;
    }

    /** Datagrams counted so far by a running {@link #countUdp} (read from another thread for pacing). */
    long benchReceivedSoFar() {
        return benchReceived;
    }

    /** Latency workload: {@code count} pings one after another; returns each round trip in nanoseconds (lost ones omitted). */
    long[] pingRoundTrips(int count, int payload) throws InterruptedException {
        VirtioNetDriver driver = net;
        int host = Ipv4Address.parseValue(options.hostAddress());
        long[] rtts = new long[count];
        int got = 0;
        for (int seq = 1; seq <= count && !stop; seq++) {
            stack.sendPing(host, 0x4C41, seq, payload);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
            PingReply reply = null;
            while (reply == null && System.nanoTime() < deadline) {
                long seen = driver.interruptsSeen();
                driver.pollReceive(rx);
                reply = stack.pollPingReply();
                if (reply == null) {
                    driver.awaitInterrupt(seen, TimeUnit.MILLISECONDS.toNanos(1));
                }
            }
            if (reply != null) {
                rtts[got++] = reply.rttNanos();
            }
        }
        return java.util.Arrays.copyOf(rtts, got);
    }

    /** Resets the NIC (device_status 0) and brings it up again on fresh rings, as a driver reload does. */
    void reloadNetDriver() throws InterruptedException {
        net.pci().reset();
        netUp();
    }

    /** Pings {@code targetText} {@code count} times (and sends the UDP flows); returns replies received. */
    int ping(int count, String targetText, int payloadSize) throws InterruptedException {
        VirtioNetDriver driver = net;
        int target = Ipv4Address.parseValue(targetText);
        int before = rttMs.size();
        int sentBefore = pingsSent;
        long interval = TimeUnit.MILLISECONDS.toNanos(options.intervalMs());
        long start = System.nanoTime();
        long deadline = start + count * interval + TimeUnit.SECONDS.toNanos(5);
        long nextPing = start;
        int udpPerFlow = options.udpPort() > 0 ? count : 0;
        int udpTarget = udpReceived + udpPerFlow * pairs;
        int udpSentTarget = udpSent + udpPerFlow * pairs;
        int sent = 0;
        while (!stop && (rttMs.size() - before < count || udpReceived < udpTarget) && System.nanoTime() < deadline) {
            driver = tend(driver);
            long seen = driver.interruptsSeen();
            driver.pollReceive(rx);
            drainReplies(target);
            long now = System.nanoTime();
            if (sent < count && now >= nextPing) {
                stack.sendPing(target, 0x4D4D, ++pingsSent, payloadSize);
                sent++;
                // each request gets its 5 s to be answered, however slowly the sending went (a JVM under TCG)
                deadline = Math.max(deadline, now + TimeUnit.SECONDS.toNanos(5));
                for (int p = 0; p < pairs && udpSent < udpSentTarget; p++) {
                    stack.sendUdp(Ipv4Address.parseValue(options.hostAddress()), UDP_SOURCE_PORT_BASE + p, options.udpPort(),
                            ("vmm4j flow " + p + " seq " + pingsSent).getBytes());
                    udpSent++;
                }
                nextPing = now + interval;
            }
            long wait = sent < count ? Math.max(0, nextPing - System.nanoTime()) : TimeUnit.MILLISECONDS.toNanos(20);
            driver.awaitInterrupt(seen, Math.min(wait, TimeUnit.MILLISECONDS.toNanos(20)));
        }
        int received = rttMs.size() - before;
        if (count > 0) {
            log.printf("--- %s ping statistics: %d sent, %d received, %d%% loss%s%n", targetText, pingsSent - sentBefore, received,
                    sent == 0 ? 0 : 100 * (sent - received) / sent, rttSummary());
        }
        return received;
    }

    /** Stays up answering pings and ARP for {@code seconds}. */
    void serve(int seconds) throws InterruptedException {
        if (seconds <= 0) {
            return;
        }
        VirtioNetDriver driver = net;
        long serveUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        log.printf("guest: serving at %s for %d s (ping it from the host)%n", options.guestIp(), seconds);
        int target = Ipv4Address.parseValue(options.target());
        while (!stop && System.nanoTime() < serveUntil) {
            driver = tend(driver);
            long seen = driver.interruptsSeen();
            driver.pollReceive(rx);
            drainReplies(target);
            driver.awaitInterrupt(seen, TimeUnit.MILLISECONDS.toNanos(50));
        }
        log.printf("guest: answered %d echo requests%n", echoRequestsAnswered());
    }

    /** VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, then steer flows over the pairs left; returns the ack. */
    int setActivePairs(int n) {
        int ack = net.setQueuePairs(n);
        if (ack == 0) {
            pairs = n;
        }
        return ack;
    }

    long echoRequestsAnswered() {
        return echoRequestsBeforeReboot + (stack == null ? 0 : stack.echoRequestsAnswered());
    }

    private void drainReplies(int target) {
        PingReply reply;
        while ((reply = stack.pollPingReply()) != null) {
            if (reply.sourceIp() == target) {
                double ms = reply.rttNanos() / 1e6;
                rttMs.add(ms);
                log.printf("guest: %d bytes from %s: icmp_seq=%d time=%.3f ms%n", reply.dataLength() + 8,
                        Ipv4Address.format(reply.sourceIp()), reply.sequence(), ms);
            }
        }
    }

    private String rttSummary() {
        if (rttMs.isEmpty()) {
            return "";
        }
        double min = rttMs.stream().mapToDouble(Double::doubleValue).min().orElse(0);
        double max = rttMs.stream().mapToDouble(Double::doubleValue).max().orElse(0);
        double avg = rttMs.stream().mapToDouble(Double::doubleValue).average().orElse(0);
        return String.format(", rtt min/avg/max = %.3f/%.3f/%.3f ms", min, avg, max);
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

    /** The reuse device: negotiate, one queue, one buffer of entropy. */
    private void readEntropy(ConfigAccess cfg, PciFirmware.Device d) throws InterruptedException {
        VirtioPciDriver pci = new VirtioPciDriver(cfg, mmio, memory, allocator, d);
        pci.negotiate(VirtioFeatures.bit(VirtioFeatures.VERSION_1));
        pci.enableMsix(2, 0x28);
        pci.setConfigVector(0);
        DriverQueue q = pci.setupQueue(0, 16, 1);
        long notify = pci.notifyAddress(0);
        pci.driverOk();
        long buf = allocator.allocate(16, 16);
        q.add(new long[] {buf}, new int[] {16}, 0);
        q.publish();
        long seen = apic.count(0x29);
        pci.kick(notify, 0);
        apic.awaitBeyond(0x29, seen, 2_000);
        DriverQueue.Used used = q.pollUsed();
        if (used != null) {
            byte[] bytes = new byte[used.length()];
            memory.read(buf, bytes, 0, bytes.length);
            rng = HexFormat.of().formatHex(bytes);
            log.printf("guest: virtio-rng gave %d bytes: %s%n", bytes.length, rng);
        }
    }

    private static String bar(PciFirmware.Device d, int i) {
        return d.barAddress()[i] == 0 ? "-" : String.format("0x%x/%dK", d.barAddress()[i], d.barSize()[i] / 1024);
    }
}
