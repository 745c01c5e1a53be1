package io.vmm4j.cli.vm;

import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;

/** What the Java guest's virtio-net driver asks for unless told otherwise. */
public final class GuestDefaults {
    private GuestDefaults() {
    }

    /**
     * The ring and control features, but no checksum or segmentation offloads: the guest's tiny
     * stack verifies every checksum itself and builds no GSO frames. RING_PACKED too: the device
     * offers it only when the VMM runs with packed rings, and the driver then sets up packed queues.
     */
    public static long features() {
        long f = 0;
        for (int bit : new int[] {VirtioFeatures.VERSION_1, VirtioFeatures.EVENT_IDX, VirtioFeatures.INDIRECT_DESC, VirtioFeatures.RING_PACKED,
                NetFeatures.MAC, NetFeatures.STATUS, NetFeatures.MTU, NetFeatures.MRG_RXBUF, NetFeatures.CTRL_VQ,
                NetFeatures.CTRL_RX, NetFeatures.MQ, NetFeatures.CTRL_GUEST_OFFLOADS}) {
            f |= VirtioFeatures.bit(bit);
        }
        return f;
    }
}
