package io.vmm4j.cli.vm;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.bus.BusDevice;
import io.vmm4j.core.kvm.GuestFailureException;
import io.vmm4j.core.kvm.KvmIoctls;
import io.vmm4j.core.kvm.KvmVcpu;
import io.vmm4j.core.kvm.LongMode;
import io.vmm4j.core.kvm.VmExitCounts;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.guest.GuestAbi;
import io.vmm4j.guest.KvmGuestImage;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The C guest (examples/kvm-guest) on a real vCPU: loaded at its fixed address, told what to do
 * through its boot parameters, entered in 64-bit mode. It prints on the serial port, says where
 * its quiet (steady-traffic) phases begin and end on the phase port, and reports done on the done
 * port, after writing its results into guest memory. The VMM counts the vCPU's exits to user
 * space, over the whole run and inside the quiet phases, against the packets the device moved.
 */
final class KvmGuest implements GuestRunner {
    private final VmOptions options;
    private final KvmVcpu vcpu;
    private final GuestMemory memory;
    private final PrintStream log;
    private final SerialConsole console;
    private final LongSupplier packets;
    private final LongSupplier kicks;
    private volatile Integer doneStatus;
    private volatile String error;
    private volatile boolean stopRequested;
    /** Opens at the guest's first quiet phase, or when its run ends without one. */
    private final CountDownLatch firstQuietPhaseOrEnd = new CountDownLatch(1);
    private volatile boolean quietPhaseBegun;
    private GuestAbi.Results results;
    private long tscKhz;
    // quiet-phase accounting (vCPU thread only)
    private VmExitCounts phaseStartExits;
    private long phaseStartPackets;
    private long phaseStartKicks;
    private long phaseStartNanos;
    private VmExitCounts quietExits = VmExitCounts.none();
    private long quietPackets;
    private long quietKicks;
    private long quietNanos;

    /**
     * @param packets frames the NIC moved so far, both directions (device counters)
     * @param kicks   kicks the NIC's queues served so far (device counters)
     */
    KvmGuest(VmOptions options, KvmMachine machine, PrintStream log, LongSupplier packets, LongSupplier kicks) {
        this.options = options;
        this.vcpu = machine.vcpu();
        this.memory = machine.memory();
        this.log = log;
        this.packets = packets;
        this.kicks = kicks;
        this.console = new SerialConsole(log);
        Bus pio = machine.pio();
        pio.register(GuestAbi.PORT_SERIAL, SerialConsole.PORTS, console);
        pio.register(GuestAbi.PORT_DONE, 4, new WriteOnlyPort(this::done));
        pio.register(GuestAbi.PORT_PHASE, 4, new WriteOnlyPort(this::phase));
    }

    /** A port that only takes writes. */
    private record WriteOnlyPort(java.util.function.LongConsumer onWrite) implements BusDevice {
        @Override
        public long read(long offset, int size) {
            return 0;
        }

        @Override
        public void write(long offset, int size, long value) {
            if (offset == 0) {
                onWrite.accept(value);
            }
        }
    }

    private void done(long status) {
        doneStatus = (int) status;
        vcpu.requestStop(); // this exit is the guest's last
    }

    private void phase(long which) {
        VmExitCounts now = vcpu.exitCounts();
        if (which == GuestAbi.PHASE_QUIET_BEGIN) {
            phaseStartExits = now;
            phaseStartPackets = packets.getAsLong();
            phaseStartKicks = kicks.getAsLong();
            phaseStartNanos = System.nanoTime();
            quietPhaseBegun = true;
            firstQuietPhaseOrEnd.countDown();
        } else if (which == GuestAbi.PHASE_QUIET_END && phaseStartExits != null) {
            long[] window = now.minus(phaseStartExits).byReason();
            window[KvmIoctls.EXIT_IO]--; // this very OUT to the phase port
            quietExits = quietExits.plus(new VmExitCounts(window));
            quietPackets += packets.getAsLong() - phaseStartPackets;
            quietKicks += kicks.getAsLong() - phaseStartKicks;
            quietNanos += System.nanoTime() - phaseStartNanos;
            phaseStartExits = null;
        }
    }

    @Override
    public void run() {
        Thread watchdog = null;
        try {
            long entry = KvmGuestImage.loadInto(memory);
            tscKhz = vcpu.tscKhz();
            if (tscKhz == 0) {
                throw new IllegalStateException("KVM cannot tell this vCPU's TSC frequency (KVM_GET_TSC_KHZ), which the guest times with");
            }
            int flags = GuestAbi.FLAG_EVENT_IDX;
            FloodWorkload flood = options.flood();
            new GuestAbi.BootParams(tscKhz, GuestAbi.ipv4(options.guestIp()), GuestAbi.ipv4(options.target()), options.count(),
                    options.intervalMs(), options.pingSize(), options.serveSeconds() * 1000, flags,
                    flood == null ? GuestAbi.WORKLOAD_NONE : flood.kind().abiValue(), flood == null ? 0 : flood.frameSize(),
                    flood == null ? 0 : flood.durationMs(), flood == null ? 0 : flood.port()).writeTo(memory);
            memory.fill(GuestAbi.RESULTS_ADDRESS, 0x4000, (byte) 0);
            LongMode.enter(vcpu, memory, entry, GuestAbi.STACK_TOP, GuestAbi.BOOT_PARAMS_ADDRESS);
            watchdog = startWatchdog();
            if (stopRequested) {
                return;
            }
            vcpu.run();
        } catch (GuestFailureException e) {
            error = "the guest stopped: " + e.getMessage();
            log.println("vmm4j: " + error);
        } catch (RuntimeException e) {
            error = e.getMessage();
            log.println("vmm4j: " + error);
        } finally {
            if (watchdog != null) {
                watchdog.interrupt();
            }
            console.flush();
            results = GuestAbi.Results.readFrom(memory);
            if (error == null) {
                error = outcome();
            }
            firstQuietPhaseOrEnd.countDown();
        }
    }

    /** Why the run ended, when that is a failure; null for a guest that reported success. */
    private String outcome() {
        Integer status = doneStatus;
        if (status == null) {
            return stopRequested ? null : "the guest never reported done; its last line was: " + console.lastLine();
        }
        if (status != GuestAbi.STATUS_OK) {
            return "the guest failed with status 0x" + Integer.toHexString(status)
                    + (results.error().isEmpty() ? "" : ": " + results.error());
        }
        return null;
    }

    /** Stops a guest that outlives its own deadlines by far (a hang), with a message saying so. */
    private Thread startWatchdog() {
        long seconds = 30 + (long) options.count() * options.intervalMs() / 1000 + options.serveSeconds()
                + (options.flood() == null ? 0 : options.flood().durationMs() / 1000);
        return Thread.ofPlatform().daemon().name("kvm-watchdog").start(() -> {
            try {
                Thread.sleep(TimeUnit.SECONDS.toMillis(seconds));
            } catch (InterruptedException e) {
                return;
            }
            error = "the guest did not finish within " + seconds + " s; its last line was: " + console.lastLine();
            vcpu.requestStop();
        });
    }

    /** Waits until the guest enters its first quiet phase (its pings, flood or count loop); false if it did not in time. */
    boolean awaitQuietPhase(long timeoutNanos) throws InterruptedException {
        firstQuietPhaseOrEnd.await(timeoutNanos, TimeUnit.NANOSECONDS);
        return quietPhaseBegun;
    }

    @Override
    public void requestStop() {
        stopRequested = true;
        vcpu.requestStop();
    }

    @Override
    public GuestReport report() {
        GuestAbi.Results r = results;
        VmExitCounts exits = vcpu.exitCounts();
        if (r == null) {
            return new GuestReport(0, 0, 0, List.of(), 0, 0, 0, 0, "not read", error, null, exits.asMap(), kvmReport(exits, null), null, null);
        }
        List<Double> rtt = new ArrayList<>();
        for (long ns : r.rttNs()) {
            rtt.add(ns / 1e6);
        }
        String rng = r.rng().length == 0 ? "not read" : HexFormat.of().formatHex(r.rng());
        return new GuestReport(r.features(), 1, r.pingsSent(), List.copyOf(rtt), 0, 0, 1, r.echoRequestsAnswered(), rng, error, null,
                exits.asMap(), kvmReport(exits, r), null, null);
    }

    /** The exits over the whole run and in the quiet phases, and what the guest counted itself (when its results were read). */
    private RunSummary.Kvm kvmReport(VmExitCounts total, GuestAbi.Results r) {
        RunSummary.QuietPhase q = new RunSummary.QuietPhase(quietPackets, quietKicks, quietExits.total(), quietExits.asMap(),
                quietPackets == 0 ? 0 : (double) quietExits.total() / quietPackets, quietNanos / 1e9);
        RunSummary.GuestCounters counters = r == null ? null : new RunSummary.GuestCounters(r.kicks(), r.rxInterrupts(), r.txInterrupts(),
                r.configInterrupts(), r.timerInterrupts(), r.framesTransmitted(), r.framesReceived());
        FloodWorkload w = options.flood();
        RunSummary.Flood flood = null;
        if (w != null && r != null) {
            GuestAbi.Flood f = r.flood();
            double seconds = f.nanos() / 1e9;
            flood = new RunSummary.Flood(w.kind().label(), w.kind() == FloodWorkload.Kind.TX_FLOOD ? w.frameSize() : 0, w.port(),
                    f.frames(), f.bytes(), seconds, seconds > 0 ? f.frames() / seconds : 0, f.otherFrames(), f.kicks(), f.interrupts());
        }
        return new RunSummary.Kvm(total.total(), q, counters, tscKhz, flood);
    }
}
