package io.vmm4j.cli.vm;

/**
 * The guest's vCPU: a platform thread named {@code vcpu0} that runs the guest until it is done,
 * stopped by a request or by Ctrl-C (a shutdown hook stops the guest and gives it 2 s). It keeps
 * QMP's run state: prelaunch before the run, running during it, shutdown after.
 */
final class VcpuThread {
    static final String NAME = "vcpu0";

    private volatile GuestRunner runner;
    private volatile String runState = "prelaunch";
    private volatile boolean stopRequested;

    /** Runs {@code guest} on the vCPU thread and waits for it to finish. */
    void run(GuestRunner guest) throws InterruptedException {
        runner = guest;
        if (stopRequested) {
            guest.requestStop();
        }
        runState = "running";
        Thread vcpu = Thread.ofPlatform().name(NAME).start(guest::run);
        Thread hook = Thread.ofPlatform().unstarted(() -> {
            guest.requestStop();
            try {
                vcpu.join(2_000);
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        });
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            vcpu.join();
        } finally {
            runState = "shutdown";
        }
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the JVM is already exiting (Ctrl-C); the hook stops the guest
        }
    }

    /** Asks the guest to stop (now, or as soon as it starts); {@link #run} then returns. */
    void requestStop() {
        stopRequested = true;
        GuestRunner r = runner;
        if (r != null) {
            r.requestStop();
        }
    }

    boolean stopRequested() {
        return stopRequested;
    }

    /** QMP's run state: prelaunch, running or shutdown. */
    String runState() {
        return runState;
    }
}
