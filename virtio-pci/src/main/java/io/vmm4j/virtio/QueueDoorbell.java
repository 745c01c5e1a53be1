package io.vmm4j.virtio;

import io.vmm4j.core.event.EventLoop;

/**
 * The two notifications of one virtqueue as its device side sees them (virtio 1.2 §2.3): the
 * driver's available buffer notification (the kick) wakes the device, and the device's used
 * buffer notification (the call) wakes the driver. Inside the VMM the transport's
 * {@link QueueBinding} is one (ioeventfd or synchronous notify, irqfd or direct MSI-X); a
 * vhost-user back-end's rings are another (the eventfds the front-end passed).
 */
public interface QueueDoorbell {
    /** A running {@link #onKick} subscription; closing it stops the handler being called. */
    interface Subscription extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Runs {@code handler} for every kick: on {@code loop}'s thread, or wherever the doorbell
     * delivers kicks (the notifying vCPU thread in synchronous mode). Stops when the returned
     * subscription is closed.
     */
    Subscription onKick(EventLoop loop, Runnable handler);

    /** Tells the driver that used buffers are there (the call). */
    void signalUsed();
}
