package io.vmm4j.virtio.net;

/**
 * Counters of one data queue, written by the one thread that serves it (so plain volatile
 * increments suffice) and read by anyone (the CLI's meters, tests, the JSON summary). They belong to the
 * device, so they survive a backend switch.
 */
public final class NetQueueCounters {
    public final int queue;
    public final String direction;
    public volatile long packets;
    public volatile long bytes;
    public volatile long kicks;
    public volatile long interrupts;
    public volatile long interruptsSuppressed;
    public volatile long dropsNoBuffer;
    /** Frames dropped because the link was down (set_link off). */
    public volatile long dropsLinkDown;
    public volatile long portErrors;

    public NetQueueCounters(int queue, String direction) {
        this.queue = queue;
        this.direction = direction;
    }

    /** The queue pair this queue belongs to. */
    public int pair() {
        return queue / 2;
    }

    /**
     * The counters as numbers, read now: what the VMM's run summary, the back-end daemon's
     * statistics and management report about a queue. Each field is read once; the set is not
     * atomic (the serving thread may move on between two reads), as with any scrape.
     */
    public Snapshot snapshot() {
        return new Snapshot(queue, direction, packets, bytes, kicks, interrupts, interruptsSuppressed, dropsNoBuffer, portErrors,
                dropsLinkDown);
    }

    /**
     * One queue's counters at one moment.
     *
     * @param queue         the virtqueue index (receiveqN is 2N, transmitqN is 2N+1)
     * @param dropsLinkDown frames dropped because the link was down (set_link off)
     */
    public record Snapshot(int queue, String direction, long packets, long bytes, long kicks, long interrupts,
                           long interruptsSuppressed, long dropsNoBuffer, long portErrors, long dropsLinkDown) {
        /** All zero, for a queue nothing has counted on yet (even queues receive, odd ones transmit: virtio spec 5.1.2). */
        public static Snapshot zero(int queue) {
            return new Snapshot(queue, queue % 2 == 0 ? "rx" : "tx", 0, 0, 0, 0, 0, 0, 0, 0);
        }

        /** The queue pair this queue belongs to. */
        public int pair() {
            return queue / 2;
        }

        /** These counters and {@code other}'s (of the same queue, e.g. a later front-end's) added up. */
        public Snapshot plus(Snapshot other) {
            return new Snapshot(queue, direction, packets + other.packets, bytes + other.bytes, kicks + other.kicks,
                    interrupts + other.interrupts, interruptsSuppressed + other.interruptsSuppressed, dropsNoBuffer + other.dropsNoBuffer,
                    portErrors + other.portErrors, dropsLinkDown + other.dropsLinkDown);
        }
    }

    @Override
    public String toString() {
        return direction + queue / 2 + "{packets=" + packets + ", bytes=" + bytes + ", kicks=" + kicks + ", interrupts=" + interrupts + "}";
    }
}
