package io.vmm4j.core.kvm;

/**
 * The guest stopped running in a way the VMM does not handle (a triple fault, an entry failure,
 * an internal KVM error, an exit reason nobody dispatches, or a device that threw while serving
 * its exit). The message names the exit and carries the guest's registers at that moment.
 */
public final class GuestFailureException extends KvmException {
    private final int exitReason;

    public GuestFailureException(int exitReason, String message) {
        super(message);
        this.exitReason = exitReason;
    }

    public GuestFailureException(int exitReason, String message, Throwable cause) {
        super(message, cause);
        this.exitReason = exitReason;
    }

    /** The {@code kvm_run.exit_reason} that ended the run (KvmIoctls.EXIT_*). */
    public int exitReason() {
        return exitReason;
    }
}
