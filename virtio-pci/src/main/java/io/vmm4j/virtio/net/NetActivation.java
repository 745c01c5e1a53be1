package io.vmm4j.virtio.net;

import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.QueueBinding;
import io.vmm4j.virtio.VirtioDeviceHost;
import io.vmm4j.virtio.VirtioFeatures;

import java.util.List;

/**
 * What a backend gets at start: guest memory, the negotiated features, the data queues by pair,
 * how many pairs are active, where to resume, and the counters to keep.
 *
 * @param mtu    the MTU the device advertises: frames the guest may send and receive without GSO
 * @param resume where each queue stood (zero for a fresh start)
 */
public record NetActivation(GuestMemory memory, long ackedFeatures, int mtu, List<QueuePair> pairs, int activePairs,
                            QueuePositions resume, List<NetQueueCounters> counters, VirtioDeviceHost host) {
    /** A receive and a transmit queue; {@code index} is the pair number. */
    public record QueuePair(int index, QueueBinding rx, QueueBinding tx) {
    }

    public boolean hasFeature(int bit) {
        return VirtioFeatures.has(ackedFeatures, bit);
    }

    /** Counters of virtqueue {@code queue} (rx of pair p is 2p, tx is 2p + 1). */
    public NetQueueCounters counters(int queue) {
        return counters.get(queue);
    }
}
