package io.vmm4j.cli.vm;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.kvm.VmExitCounts;
import io.vmm4j.tap.PacketPort;
import io.vmm4j.vhost.BackendConnectionListener;
import io.vmm4j.vhost.user.VhostUserNetBackend;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.io.PrintStream;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The toy VMM: a {@link GuestMachine} for the guest kind asked for (the Java frontend on a thread,
 * or with {@code --vcpu kvm} the C guest, or with {@code --kernel} a Linux kernel, on KVM vCPUs whose
 * kicks are KVM ioeventfds and whose interrupts are KVM irqfds on the same eventfds the data planes use), the NIC's port
 * ({@link NetPort}), its data plane ({@link NetBackends}), the PCI devices on the machine
 * ({@link PciDevices}: virtio-net, and virtio-rng, the transport reused), and the guest on its
 * {@link VcpuThread}. This class puts them together, in that order, and is what management sees.
 */
public final class ToyVm implements AutoCloseable {
    /** A VM that cannot be built as asked; the message says why and what to do. */
    public static final class VmException extends RuntimeException {
        public VmException(String message) {
            super(message);
        }

        public VmException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private final VmOptions options;
    private final OwnedResources resources;
    private final GuestMachine machine;
    private final NetPort port;
    private final LinkDownOnHangup hangup;
    private final NetBackend backend;
    private final PciDevices devices;
    private final VcpuThread vcpu = new VcpuThread();
    private volatile JavaGuest guest;
    private volatile GuestRunner runner;

    public ToyVm(VmOptions options, PrintStream log) {
        this.options = options;
        this.resources = new OwnedResources(log);
        NetBackends.check(options); // said before anything is created
        try {
            machine = resources.add(GuestMachine.create(options, log));
            EventLoop control = resources.add(new EventLoop("vmm-control"));
            port = resources.add(NetPort.open(options, log));
            hangup = options.dataPlane() == DataPlane.VHOST_USER ? new LinkDownOnHangup(options.socket(), log) : null;
            backend = resources.add(NetBackends.open(options, port, control, hangup));
            VirtioPciTransport.NotifyMode mode = options.dataPlane().notifyMode();
            NetConfig config = new NetConfig(NetConfig.parseMac(options.mac()), options.mtu(), options.pairs(), options.queueSize(),
                    options.ring());
            devices = resources.add(new PciDevices(machine, config, backend, mode, control, log));
            if (hangup != null) {
                hangup.attach(devices.net());
            }
            log.printf("vmm4j: %d MiB guest RAM, PCI host (CF8/CFC, ECAM at 0x%x), virtio-net on %s %s, data plane %s%s%s%n",
                    options.memoryMiB(), machine.ecamBase(), port.kind(), port.name(), backend.name(),
                    " " + options.dataPlane().describe() + (options.pollMicros() > 0 ? ", busy-poll " + options.pollMicros() + " µs" : ""),
                    machine.describe(mode));
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    public VirtioNet net() {
        return devices.net();
    }

    public VirtioPciTransport netTransport() {
        return devices.netTransport();
    }

    /** The NIC's port, or null when a vhost-user back-end owns it. */
    public PacketPort port() {
        return port.port();
    }

    /** The port's name (a tap's netdev name), or with vhost-user the back-end's socket. */
    public String portName() {
        return port.name();
    }

    /** What kind of port the NIC has: "tap", "in-memory port" or "vhost-user back-end". */
    public String portKind() {
        return port.kind();
    }

    public NetBackend backend() {
        return backend;
    }

    /**
     * Who hears about a data plane outside the VMM (vhost-user) connecting or going away; told at
     * once when one is connected now.
     */
    public void setBackendConnectionListener(BackendConnectionListener listener) {
        if (hangup != null) {
            hangup.setListener(listener);
        }
    }

    /** The vhost-user back-end's connection as management sees it, or null for the other data planes. */
    public VhostUserNetBackend.ConnectionStatus backendConnection() {
        return backend instanceof VhostUserNetBackend vu ? vu.connectionStatus() : null;
    }

    /** Frames the VMM dropped with the link down while vhost-user back-ends were away (0 for the other data planes). */
    public long framesDroppedWhileBackendAway() {
        return hangup == null ? 0 : hangup.droppedWhileAway();
    }

    /** Brings the guest up on its own vcpu0 thread and hands it over for measurements (instead of {@link #run()}); the Java guest only. */
    public Workload workload() {
        if (!(machine instanceof JavaGuestMachine java)) {
            throw new VmException("measurement workloads run the Java guest: use --vcpu java");
        }
        guest = java.guest();
        return new Workload(guest);
    }

    /**
     * A PCI slot as management sees it: the device's name (QMP's qdev_id), and for a virtio
     * device its transport (null for the host bridge).
     */
    public record PciSlot(int slot, String id, VirtioPciTransport transport) {
    }

    /** Every occupied slot on bus 0: the host bridge, virtio-net (net0), virtio-rng (rng0). */
    public List<PciSlot> pciSlots() {
        return devices.slots();
    }

    /** Reads a slot's configuration space through the ECAM window, as the guest would (reads have no side effects). */
    public int readPciConfig(int slot, int offset, int size) {
        return devices.readConfig(slot, offset, size);
    }

    /** QMP's run state: prelaunch (before {@link #run()}), running (the guest's vCPU runs), shutdown (it stopped). */
    public String runState() {
        return vcpu.runState();
    }

    /** Asks the guest to stop (QMP quit); {@link #run()} then returns. */
    public void requestStop() {
        vcpu.requestStop();
    }

    /** Whether {@link #requestStop()} was called. */
    public boolean stopRequested() {
        return vcpu.stopRequested();
    }

    /**
     * Resets the machine (QMP system_reset): at its next wake-up the vCPU resets every device, then
     * the guest boots again (firmware, drivers, pings or serving go on). The future completes once
     * the devices are reset; it fails when the guest is not running, or cannot reboot.
     */
    public CompletableFuture<Void> requestSystemReset() {
        GuestRunner r = runner;
        if (r == null || !vcpu.runState().equals("running")) {
            return CompletableFuture.failedFuture(new VmException("the guest is not running (status " + vcpu.runState() + ")"));
        }
        CompletableFuture<Void> reboot = r.requestReboot();
        return reboot != null ? reboot : CompletableFuture.failedFuture(new VmException("this guest (" + machine + ") cannot be reset"));
    }

    /**
     * The exits to the VMM the vCPUs of a Linux guest ({@code --kernel}) have taken so far, read
     * while it runs: two reads bracket a window of steady traffic.
     */
    public VmExitCounts vcpuExitsSoFar() {
        if (!(machine instanceof LinuxGuestMachine linux)) {
            throw new VmException("live exit counts are read from a Linux guest: give --kernel");
        }
        return linux.vm().exitsSoFar();
    }

    /** The bytes a Linux guest ({@code --kernel}) has sent to its serial console so far (each one a UART exit). */
    public long consoleBytesSoFar() {
        if (!(machine instanceof LinuxGuestMachine linux)) {
            throw new VmException("the serial console is a Linux guest's: give --kernel");
        }
        return linux.vm().uart().transmittedBytes();
    }

    /** The Java guest, for tests that drive it further after {@link #run()} (single-threaded: one caller at a time). */
    JavaGuest guest() {
        return guest;
    }

    /**
     * Waits until the C guest on KVM, booted by {@link #run()} on another thread, enters its first steady-traffic phase
     * (its pings, or its flood or count loop): the moment a host-side flood should start. False when it did not in time,
     * or its run ended first.
     */
    public boolean awaitGuestQuietPhase(java.time.Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!(runner instanceof KvmGuest)) {
            if (!options.kvm() || options.linux()) {
                throw new VmException("quiet phases are the C guest's: use --vcpu kvm");
            }
            if (System.nanoTime() >= deadline) {
                return false;
            }
            Thread.sleep(1);
        }
        return ((KvmGuest) runner).awaitQuietPhase(Math.max(0, deadline - System.nanoTime()));
    }

    /** Boots the guest on a vCPU thread and waits for it to finish its pings and serving. */
    public RunSummary run() throws InterruptedException {
        GuestRunner started = machine.runner(devices);
        if (started instanceof JavaGuest java) {
            guest = java;
        }
        runner = started;
        vcpu.run(started);
        return summary();
    }

    RunSummary summary() {
        return RunSummary.of(options, port, devices.netTransport(), devices.queueCounters(), runner.report(),
                hangup == null ? null : hangup.reason());
    }

    @Override
    public void close() {
        VirtioNet net = devices == null ? null : devices.net();
        if (net != null && net.backend() != backend) {
            net.backend().close(); // a data plane switched in later is not in the resource list
        }
        resources.close();
    }
}
