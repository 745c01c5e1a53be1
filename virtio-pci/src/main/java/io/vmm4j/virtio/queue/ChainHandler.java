package io.vmm4j.virtio.queue;

/**
 * A device's part in {@link Virtqueue#serve}: what it does with each available chain, and what it
 * does once a batch of used chains is published. Make one per queue and keep it: the loop calls
 * it per chain and must not allocate.
 */
public interface ChainHandler {
    /** What {@link #handle} returns to give the chain back and end the pass with notifications still off. */
    int DEFER = -1;

    /**
     * Handles one chain the driver made available. Returns the bytes written into its
     * device-writable segments (the used length, virtio 1.2 §2.7.8.2, §2.8.4), or {@link #DEFER}: the chain
     * is given back ({@link Virtqueue#rewind}) for the next pass, and this pass ends without
     * enabling notifications, for a device that has a wake-up of its own for it (a full port
     * becoming writable).
     *
     * @throws VirtqueueException if the chain breaks a rule of the device type; nothing of the
     *                            batch is published then
     */
    int handle(DescriptorChain chain);

    /**
     * Called after each batch of used chains is published, with whether the driver asked for a
     * used buffer notification (§2.7.7.2): signal the call doorbell if so.
     */
    void published(boolean notifyDriver);

    /**
     * Whether to take another chain; false ends the pass (after publishing what was handled)
     * without enabling notifications: a device that is stopping. Asked before every pop.
     */
    default boolean serving() {
        return true;
    }
}
