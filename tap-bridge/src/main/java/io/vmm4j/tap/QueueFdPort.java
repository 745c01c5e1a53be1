package io.vmm4j.tap;

/**
 * What a tap and an in-memory port share: a name, one fd per queue, the vnet header size, and
 * whether the port is closed. The data plane only ever needs {@link #fd(int)}; each kind closes
 * its fds its own way.
 */
abstract sealed class QueueFdPort implements PacketPort permits MemoryPort, TapDevice {
    /** "tap", "memory port": what messages call this kind of port. */
    private final String kind;
    final String name;
    final int[] fds;
    final int vnetHeaderSize;
    volatile boolean closed;

    QueueFdPort(String kind, String name, int[] fds, int vnetHeaderSize) {
        this.kind = kind;
        this.name = name;
        this.fds = fds;
        this.vnetHeaderSize = vnetHeaderSize;
    }

    @Override
    public final String name() {
        return name;
    }

    @Override
    public final int queueCount() {
        return fds.length;
    }

    @Override
    public final int fd(int queue) {
        checkQueue(queue);
        if (closed) {
            throw new IllegalStateException(kind + " " + name + " is closed; its fds are gone");
        }
        return fds[queue];
    }

    @Override
    public final int vnetHeaderSize() {
        return vnetHeaderSize;
    }

    final void checkQueue(int queue) {
        if (queue < 0 || queue >= fds.length) {
            throw new IndexOutOfBoundsException(kind + " " + name + " has queues 0 to " + (fds.length - 1) + ", not " + queue);
        }
    }

    final void checkOpen() {
        if (closed) {
            throw new IllegalStateException(kind + " " + name + " is closed");
        }
    }

    /** "tap vmm4j0 (2 queues, 12-byte vnet header" + {@code more} + ")", for toString. */
    final String describe(String more) {
        return kind + " " + name + " (" + fds.length + (fds.length == 1 ? " queue" : " queues") + ", " + vnetHeaderSize
                + "-byte vnet header" + more + ")";
    }
}
