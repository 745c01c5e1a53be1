package io.vmm4j.virtio.net;

import io.vmm4j.virtio.queue.RingLayout;

import java.util.Arrays;

/**
 * Where each data queue stood when a backend stopped: the next avail index to consume and the
 * next used index to fill, per virtqueue index (rx0, tx0, rx1, tx1, ...). vhost calls the first
 * one the vring base.
 */
public record QueuePositions(int[] nextAvail, int[] nextUsed) {
    public QueuePositions {
        nextAvail = nextAvail.clone();
        nextUsed = nextUsed.clone();
    }

    /** Every queue at index 0: where fresh split rings start. */
    public static QueuePositions zero(int queues) {
        return new QueuePositions(new int[queues], new int[queues]);
    }

    /** Where fresh rings of {@code layout} start (a packed ring's wrap counters start at 1: {@link RingLayout#startPosition()}). */
    public static QueuePositions start(int queues, RingLayout layout) {
        int[] at = new int[queues];
        Arrays.fill(at, layout.startPosition());
        return new QueuePositions(at, at.clone());
    }

    /** Positions filled in queue by queue, as a backend's stop() asks each ring where it stopped. */
    public static Builder builder(int queues) {
        return new Builder(queues);
    }

    /** Collects where each of a number of queues stood; unset queues stand at 0. */
    public static final class Builder {
        private final int[] nextAvail;
        private final int[] nextUsed;

        private Builder(int queues) {
            nextAvail = new int[queues];
            nextUsed = new int[queues];
        }

        public Builder set(int queue, int nextAvail, int nextUsed) {
            this.nextAvail[queue] = nextAvail;
            this.nextUsed[queue] = nextUsed;
            return this;
        }

        public QueuePositions build() {
            return new QueuePositions(nextAvail, nextUsed);
        }
    }

    public int nextAvail(int queue) {
        return nextAvail[queue];
    }

    public int nextUsed(int queue) {
        return nextUsed[queue];
    }

    @Override
    public String toString() {
        return "QueuePositions{avail=" + Arrays.toString(nextAvail) + ", used=" + Arrays.toString(nextUsed) + "}";
    }
}
