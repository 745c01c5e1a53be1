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
import io.vmm4j.virtio.driver.net.Ipv4Address;
import io.vmm4j.virtio.driver.net.PingReply;
import io.vmm4j.virtio.net.VirtioNet;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The toy VMM's guest, written in Java and run on a vCPU thread: firmware-style PCI enumeration,
 * the virtio-rng driver, then its {@link GuestNic} (the virtio-net driver and a tiny IPv4 stack),
 * which pings the host and then serves. It reaches the devices only through PIO/MMIO accesses on
 * the buses and through guest memory, like code in a real guest. {@link #traffic()} runs the
 * measurement workloads on the same NIC.
 */
final class JavaGuest implements GuestRunner {
    static final long PCI_WINDOW = 0xC000_0000L;
    static final long PCI_WINDOW_SIZE = 0x1000_0000L;

    private final VmOptions options;
    private final Bus pio;
    private final Bus mmio;
    private final GuestMemory memory;
    private final GuestLocalApic apic;
    private final PrintStream log;
    private final GuestNic nic;
    private final GuestTraffic traffic;
    private GuestAllocator allocator;
    private ConfigAccess cfg;
    private PciFirmware.Device nicDevice;
    private volatile boolean stop;
    private volatile CompletableFuture<Void> rebootRequest;
    private Runnable platformReset = () -> { };
    private volatile int reboots;
    private long echoRequestsBeforeReboot;

    private final List<Double> rttMs = new ArrayList<>();
    private int pingsSent;
    private int udpSent;
    private String rng = "not found";
    private volatile String error;

    JavaGuest(VmOptions options, Bus pio, Bus mmio, GuestMemory memory, GuestLocalApic apic, PrintStream log) {
        this.options = options;
        this.pio = pio;
        this.mmio = mmio;
        this.memory = memory;
        this.apic = apic;
        this.log = log;
        this.nic = new GuestNic(options, mmio, memory, apic, log);
        this.traffic = new GuestTraffic(nic, options.hostAddress(), () -> stop);
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
    @Override
    public CompletableFuture<Void> requestReboot() {
        CompletableFuture<Void> done = new CompletableFuture<>();
        rebootRequest = done;
        return done;
    }

    GuestNic nic() {
        return nic;
    }

    GuestTraffic traffic() {
        return traffic;
    }

    /**
     * Between two waits of the vCPU loops: carries out a pending reboot, and reads the link state
     * again after a configuration interrupt. Returns the driver to use from now on (a new one after a reboot).
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
            return nic.driver();
        }
        nic.watchLink();
        return driver;
    }

    @Override
    public GuestReport report() {
        return new GuestReport(nic.acked(), nic.pairs(), pingsSent, List.copyOf(rttMs), udpSent, nic.udpReceived(), nic.maxRxBuffers(),
                echoRequestsAnswered(), rng, error, new RunSummary.GuestLink(nic.linkUp(), nic.linkChanges(), reboots), null, null, null,
                nic.drops());
    }

    @Override
    public void run() {
        try {
            bringUp();
            ping(options.count(), options.target(), options.pingSize());
            serve(options.serveSeconds());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            error = e.getMessage();
            log.println("guest: stopped: " + e.getMessage());
        }
    }

    /** Firmware, then the drivers: the reuse device once, then virtio-net and the IPv4 stack. */
    void bringUp() throws InterruptedException {
        ConfigAccess access = ConfigAccess.ports(pio);
        List<PciFirmware.Device> devices = PciFirmware.enumerateAndAssign(access, PCI_WINDOW, PCI_WINDOW_SIZE);
        PciFirmware.Device found = null;
        PciFirmware.Device entropy = null;
        for (PciFirmware.Device d : devices) {
            log.printf("firmware: 00:%02x.0 %04x:%04x class %06x BAR0 %s BAR2 %s%n", d.slot(), d.vendorId(), d.deviceId(),
                    d.classCode(), bar(d, 0), bar(d, 2));
            if (d.vendorId() == 0x1AF4 && d.deviceId() == 0x1040 + VirtioNet.DEVICE_TYPE) {
                found = d;
            } else if (d.vendorId() == 0x1AF4 && d.deviceId() == 0x1044) {
                entropy = d;
            }
        }
        if (entropy != null) {
            readEntropy(access, entropy);
        }
        if (found == null) {
            throw new IllegalStateException("no virtio-net device on the PCI bus");
        }
        cfg = access;
        nicDevice = found;
        nic.bringUp(cfg, nicDevice, allocator);
    }

    /** Resets the NIC (device_status 0) and brings it up again on fresh rings, as a driver reload does. */
    void reloadNetDriver() {
        nic.reload(cfg, nicDevice, allocator);
    }

    /** Pings {@code targetText} {@code count} times (and sends the UDP flows); returns replies received. */
    int ping(int count, String targetText, int payloadSize) throws InterruptedException {
        VirtioNetDriver driver = nic.driver();
        int target = Ipv4Address.parseValue(targetText);
        int host = Ipv4Address.parseValue(options.hostAddress());
        int before = rttMs.size();
        int sentBefore = pingsSent;
        long interval = TimeUnit.MILLISECONDS.toNanos(options.intervalMs());
        long start = System.nanoTime();
        long deadline = start + count * interval + TimeUnit.SECONDS.toNanos(5);
        long nextPing = start;
        int udpPerFlow = options.udpPort() > 0 ? count : 0;
        int udpTarget = nic.udpReceived() + udpPerFlow * nic.pairs();
        int udpSentTarget = udpSent + udpPerFlow * nic.pairs();
        int sent = 0;
        while (!stop && (rttMs.size() - before < count || nic.udpReceived() < udpTarget) && System.nanoTime() < deadline) {
            driver = tend(driver);
            long seen = driver.interruptsSeen();
            nic.poll();
            drainReplies(target);
            long now = System.nanoTime();
            if (sent < count && now >= nextPing) {
                nic.stack().sendPing(target, 0x4D4D, ++pingsSent, payloadSize);
                sent++;
                // each request gets its 5 s to be answered, however slowly the sending went (a JVM under TCG)
                deadline = Math.max(deadline, now + TimeUnit.SECONDS.toNanos(5));
                for (int p = 0; p < nic.pairs() && udpSent < udpSentTarget; p++) {
                    nic.stack().sendUdp(host, GuestNic.UDP_SOURCE_PORT_BASE + p, options.udpPort(),
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
        VirtioNetDriver driver = nic.driver();
        long serveUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        log.printf("guest: serving at %s for %d s (ping it from the host)%n", options.guestIp(), seconds);
        int target = Ipv4Address.parseValue(options.target());
        while (!stop && System.nanoTime() < serveUntil) {
            driver = tend(driver);
            long seen = driver.interruptsSeen();
            nic.poll();
            drainReplies(target);
            driver.awaitInterrupt(seen, TimeUnit.MILLISECONDS.toNanos(50));
        }
        log.printf("guest: answered %d echo requests%n", echoRequestsAnswered());
    }

    /** VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, then steer flows over the pairs left; returns the ack. */
    int setActivePairs(int n) {
        return nic.setActivePairs(n);
    }

    private long echoRequestsAnswered() {
        return echoRequestsBeforeReboot + nic.echoRequestsAnswered();
    }

    private void drainReplies(int target) {
        PingReply reply;
        while ((reply = nic.stack().pollPingReply()) != null) {
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

    /** The reuse device: negotiate, one queue, one buffer of entropy. */
    private void readEntropy(ConfigAccess access, PciFirmware.Device d) throws InterruptedException {
        VirtioPciDriver pci = new VirtioPciDriver(access, mmio, memory, allocator, d);
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
