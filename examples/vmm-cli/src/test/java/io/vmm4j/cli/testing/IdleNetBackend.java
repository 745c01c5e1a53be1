package io.vmm4j.cli.testing;

import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.QueuePositions;

/** A data plane that only has a name and a queue-pair count: for tests of what reads a backend, never of traffic. */
public final class IdleNetBackend implements NetBackend {
    private final String name;
    private final int pairs;

    public IdleNetBackend(String name, int pairs) {
        this.name = name;
        this.pairs = pairs;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long supportedFeatures() {
        return 0;
    }

    @Override
    public int maxQueuePairs() {
        return pairs;
    }

    @Override
    public void start(NetActivation activation) {
    }

    @Override
    public QueuePositions stop() {
        return null;
    }

    @Override
    public void setActivePairs(int pairs) {
    }

    @Override
    public void setGuestOffloads(long guestOffloads) {
    }

    @Override
    public void close() {
    }
}
