package io.vmm4j.cli.vm;

import io.vmm4j.core.kvm.VmExitCounts;
import io.vmm4j.core.x86.LinuxVm;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.io.PrintStream;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A Linux kernel on its {@link LinuxGuestMachine}: runs every vCPU until the guest reboots (the
 * i8042 reset: {@code reboot}, or {@code panic=-1} after a panic), a vCPU fails or it is stopped.
 * A clean reboot is a successful run; a panic or a failed vCPU is an error with the console's last lines.
 */
final class LinuxGuest implements GuestRunner {
    /** No time limit of our own: the guest decides when it is done (QMP quit or Ctrl-C stop it sooner). */
    private static final Duration NO_LIMIT = Duration.ofDays(365);

    private final LinuxGuestMachine machine;
    private final PciDevices devices;
    private final PrintStream log;
    private volatile long acked;
    /** The queue pairs the driver last set (VQ_PAIRS_SET): the device's count goes back to 1 at the reset on the guest's way down. */
    private volatile int pairsSet = 1;
    private volatile boolean stopRequested;
    private volatile LinuxVm.Outcome outcome;

    LinuxGuest(LinuxGuestMachine machine, PciDevices devices) {
        this.machine = machine;
        this.devices = devices;
        this.log = machine.log();
        // the features as the device saw them accepted: a reset on the guest's way down clears the transport's copy
        devices.net().addListener(new VirtioNet.Listener() {
            @Override
            public void activePairsChanged(int pairs) {
                pairsSet = pairs;
            }
        });
        devices.netTransport().addObserver(new VirtioPciTransport.Observer() {
            @Override
            public void featuresNegotiated(long offered, long ackedNow, boolean accepted, String problem) {
                if (accepted) {
                    acked = ackedNow;
                }
            }
        });
    }

    @Override
    public void run() {
        log.println("vmm4j: booting " + machine.options().kernel() + " with \"" + machine.commandLine() + "\"");
        if (stopRequested) {
            return;
        }
        LinuxVm.Outcome out = machine.vm().run(NO_LIMIT);
        outcome = out;
        log.printf("vmm4j: run ended: %s after %.1f s; exits %s%n", out.ending(), out.elapsed().toMillis() / 1000.0, out.totalExits());
        String error = error(out);
        if (error != null) {
            log.println("vmm4j: " + error);
            log.println("vmm4j: last console lines:");
            for (String l : machine.console().tail()) {
                log.println("  | " + l);
            }
        }
    }

    private String error(LinuxVm.Outcome out) {
        return error(out.ending(), out.failure(), machine.console().panic(), stopRequested);
    }

    /**
     * Why a run that ended so failed, or null for a clean reboot or a stop that was asked for (QMP
     * quit, Ctrl-C). A panic with panic=-1 also ends in an i8042 reset: the console's panic line tells them apart.
     */
    static String error(LinuxVm.Ending ending, Throwable failure, String panic, boolean stopRequested) {
        return switch (ending) {
            case REBOOTED -> panic == null ? null : "the guest panicked: " + panic;
            case STOPPED -> stopRequested ? null : "the guest was stopped";
            case FAILED -> "a vCPU failed: " + (failure == null ? "no reason given" : failure.getMessage());
            case TIMED_OUT -> "the guest did not reboot within " + NO_LIMIT.toDays() + " days";
        };
    }

    /**
     * QMP system_reset: refused, as the kernel was loaded by the VMM, not by firmware that could load
     * it again; a reboot inside the guest ends the run instead (Firecracker does the same).
     */
    @Override
    public CompletableFuture<Void> requestReboot() {
        return CompletableFuture.failedFuture(new ToyVm.VmException("a Linux guest booted with --kernel cannot be reset by the VMM: "
                + "reboot inside the guest ends the run (status 0); start the VMM again to boot it anew"));
    }

    @Override
    public void requestStop() {
        stopRequested = true;
        machine.vm().stop();
    }

    @Override
    public GuestReport report() {
        LinuxVm.Outcome out = outcome;
        LinuxConsole console = machine.console();
        String error = out == null ? "the guest did not run" : error(out);
        VmExitCounts exits = out == null ? VmExitCounts.none() : out.totalExits();
        RunSummary.Linux linux = new RunSummary.Linux(machine.options().kernel().toString(), machine.commandLine(), machine.options().cpus(),
                out == null ? "NOT_RUN" : out.ending().name(), console.panic(), out == null ? 0 : out.elapsed().toMillis() / 1000.0,
                console.results(), error == null ? null : console.tail());
        return new GuestReport(acked, pairsSet, 0, List.of(), 0, 0, 0, 0, null, error, null, exits.asMap(), null, linux, null);
    }
}
