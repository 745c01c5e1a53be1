package io.vmm4j.virtio.net;

/**
 * The virtio-net data plane seam: who moves packets between the guest's rings and the host. The
 * device (control plane) offers the guest only what the backend supports, hands it the queues at
 * DRIVER_OK, and keeps the control queue for itself. Implementations: in-process emulation,
 * kernel vhost-net, vhost-user.
 *
 * <p>A <em>backend switch</em> is {@link #stop()} on one backend and {@link #start} on another with
 * the returned positions: nothing is lost or repeated. A <em>device reset</em> calls {@link #stop()}
 * and discards the positions; the next start begins at index 0.
 */
public interface NetBackend extends AutoCloseable {
    /** A short name: {@code emulated}, {@code vhost-net}, {@code vhost-user}. */
    String name();

    /** Feature bits (device and transport) this data plane can honour. */
    long supportedFeatures();

    /** How many queue pairs it can serve. */
    int maxQueuePairs();

    /** Starts serving the queues; returns once the data plane owns them. */
    void start(NetActivation activation);

    /** Stops touching the rings and returns where each queue stood; idempotent (null if not started). */
    QueuePositions stop();

    /** The driver changed the number of active queue pairs (VIRTIO_NET_CTRL_MQ). */
    void setActivePairs(int pairs);

    /**
     * The link went down or up (management's set_link): with the link down a data plane drops
     * frames both ways, as a NIC with no carrier does. A data plane outside the VMM may ignore it.
     */
    default void setLinkUp(boolean up) {
    }

    /** The driver changed which offloads it can receive (VIRTIO_NET_CTRL_GUEST_OFFLOADS): GUEST_* feature bits. */
    void setGuestOffloads(long guestOffloads);

    /** Releases what the backend holds (taps, fds, threads). */
    @Override
    void close();
}
