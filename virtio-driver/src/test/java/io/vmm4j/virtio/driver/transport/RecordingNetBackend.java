package io.vmm4j.virtio.driver.transport;

import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetBackend;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.QueuePositions;

import java.util.ArrayList;
import java.util.List;

/** A unit-test double of a data plane: records what the device asks of it and moves no packets. */
final class RecordingNetBackend implements NetBackend {
    final List<String> log = new ArrayList<>();
    final long features;
    final int pairs;
    volatile NetActivation activation;
    QueuePositions stopAt = null;

    RecordingNetBackend(long features, int pairs) {
        this.features = features;
        this.pairs = pairs;
    }

    @Override
    public String name() {
        return "recording";
    }

    @Override
    public long supportedFeatures() {
        return features;
    }

    @Override
    public int maxQueuePairs() {
        return pairs;
    }

    @Override
    public synchronized void start(NetActivation a) {
        activation = a;
        log.add("start pairs=" + a.pairs().size() + " active=" + a.activePairs() + " resume=" + a.resume());
    }

    @Override
    public synchronized QueuePositions stop() {
        if (activation == null) {
            return null;
        }
        log.add("stop");
        NetActivation a = activation;
        activation = null;
        return stopAt != null ? stopAt : QueuePositions.zero(2 * a.pairs().size());
    }

    @Override
    public synchronized void setActivePairs(int n) {
        log.add("pairs " + n);
    }

    @Override
    public synchronized void setGuestOffloads(long offloads) {
        log.add("offloads " + NetFeatures.names(offloads));
    }

    @Override
    public void close() {
    }
}
