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

    @Override
    public String toString() {
        return direction + queue / 2 + "{packets=" + packets + ", bytes=" + bytes + ", kicks=" + kicks + ", interrupts=" + interrupts + "}";
    }
}
