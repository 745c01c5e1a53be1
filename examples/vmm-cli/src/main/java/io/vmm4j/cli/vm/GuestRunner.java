package io.vmm4j.cli.vm;

/**
 * What plays the guest in the toy VM: the Java frontend on a thread ({@link JavaGuest}) or the C
 * guest on a KVM vCPU ({@link KvmGuest}). Both reach the devices only through the PIO/MMIO buses
 * and guest memory; a comparison tool can run the same devices under either.
 */
interface GuestRunner {
    /**
     * Runs the guest on the calling thread, which becomes its vCPU thread, until it is done (pings
     * sent, serving over), stopped or failed; failures end up in {@link #report()}.
     */
    void run();

    /** Asks a running guest to stop soon (Ctrl-C); {@link #run()} then returns. */
    void requestStop();

    /** What the guest did; meaningful after {@link #run()}. */
    GuestReport report();
}
