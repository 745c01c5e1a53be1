package io.vmm4j.cli.vm;

import java.util.concurrent.CompletableFuture;

/**
 * What plays the guest in the toy VM, on the vCPU thread: the Java frontend ({@link JavaGuest}) or
 * the C guest on a KVM vCPU ({@link KvmGuest}), each given by the {@link GuestMachine} it runs on.
 * Both reach the devices only through the PIO/MMIO buses and guest memory; a comparison tool can
 * run the same devices under either.
 */
interface GuestRunner {
    /**
     * Runs the guest on the calling thread, which becomes its vCPU thread, until it is done (pings
     * sent, serving over), stopped or failed; failures end up in {@link #report()}.
     */
    void run();

    /** Asks a running guest to stop soon (Ctrl-C); {@link #run()} then returns. */
    void requestStop();

    /**
     * Asks the running guest to reboot (QMP system_reset): the devices are reset, then the guest
     * boots again; the future completes once the devices are reset. Null for a guest that cannot.
     */
    default CompletableFuture<Void> requestReboot() {
        return null;
    }

    /** What the guest did; meaningful after {@link #run()}. */
    GuestReport report();
}
