package io.vmm4j.virtio.driver.net;

/**
 * The ARP translation table (RFC 826): IPv4 address to MAC, plus entries still being resolved.
 * A small fixed table with linear search and round-robin replacement, and no ageing: a changed MAC is
 * picked up whenever its owner sends ARP (the RFC 826 merge step), which suits a test guest.
 */
final class ArpCache {
    static final int CAPACITY = 64;
    /** The MAC of an entry whose request is outstanding, and what {@link #lookup} returns for no MAC. */
    static final long UNRESOLVED = -1;

    private final int[] ips = new int[CAPACITY];
    private final long[] macs = new long[CAPACITY];
    private final long[] requestedAt = new long[CAPACITY];
    private int size;
    private int nextReplaced;

    private int indexOf(int ip) {
        for (int i = 0; i < size; i++) {
            if (ips[i] == ip) {
                return i;
            }
        }
        return -1;
    }

    private int allocate(int ip) {
        int slot;
        if (size < CAPACITY) {
            slot = size++;
        } else {
            slot = nextReplaced;
            nextReplaced = (nextReplaced + 1) % CAPACITY;
        }
        ips[slot] = ip;
        return slot;
    }

    /** The MAC bits for {@code ip}, or {@link #UNRESOLVED}. */
    long lookup(int ip) {
        int index = indexOf(ip);
        return index < 0 ? UNRESOLVED : macs[index];
    }

    /** RFC 826 merge: if {@code ip} has an entry (resolved or not), set its MAC and return true. */
    boolean refresh(int ip, long mac) {
        int index = indexOf(ip);
        if (index < 0) {
            return false;
        }
        macs[index] = mac;
        return true;
    }

    void put(int ip, long mac) {
        int index = indexOf(ip);
        macs[index < 0 ? allocate(ip) : index] = mac;
    }

    /**
     * Whether to send an ARP request for the unresolved {@code ip} now, at most one per
     * {@code intervalNanos}; records the request when it says yes.
     */
    boolean requestDue(int ip, long now, long intervalNanos) {
        int index = indexOf(ip);
        if (index < 0) {
            index = allocate(ip);
            macs[index] = UNRESOLVED;
        } else if (macs[index] != UNRESOLVED || now - requestedAt[index] < intervalNanos) {
            return false;
        }
        requestedAt[index] = now;
        return true;
    }
}
