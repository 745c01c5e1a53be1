package io.vmm4j.vhost.engine;

/**
 * Why a queue pair's engine stopped itself: the driver broke a ring rule, or an access to guest
 * memory faulted. The VMM turns either into DEVICE_NEEDS_RESET; a vhost-user back-end signals
 * the ring's err fd for the first and ends the session for the second (the front-end's memory is
 * gone under its mapping).
 *
 * @param queue  the virtqueue: 2p is pair p's receive queue, 2p + 1 its transmit queue (virtio 1.2 §5.1.2)
 * @param cause  which of the two
 * @param detail what was wrong, as a sentence
 */
public record RingError(int queue, Cause cause, String detail) {
    /** What stopped the engine. */
    public enum Cause {
        /** The driver broke a rule of the ring or of virtio-net's buffers: the device needs a reset. */
        RING_BROKEN,
        /** Guest memory faulted under the access (its backing file shrank): nothing the driver did with the ring. */
        GUEST_MEMORY_FAULT
    }

    /** The queue pair. */
    public int pair() {
        return queue / 2;
    }

    /** virtio-net's name of the queue (§5.1.2): receiveq1, transmitq1, receiveq2, ... */
    public String queueName() {
        return (queue % 2 == 0 ? "receiveq" : "transmitq") + (pair() + 1);
    }

    /** The error as one line: the queue's name, then what was wrong. */
    public String message() {
        return queueName() + ": " + detail;
    }

    @Override
    public String toString() {
        return message();
    }
}
