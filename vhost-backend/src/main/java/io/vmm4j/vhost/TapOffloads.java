package io.vmm4j.vhost;

import io.vmm4j.tap.TunIoctls;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;

/**
 * Maps the guest's receive offloads to TUNSETOFFLOAD flags. The flags say what the reader of the
 * tap (the guest) can take: only GUEST_* bits matter; HOST_* bits need no tap call, the tap accepts
 * GSO frames from the guest with IFF_VNET_HDR anyway. The kernel refuses segmentation offloads
 * without checksum offload, so nothing is set without GUEST_CSUM (as QEMU's tap_fd_set_offload).
 */
public final class TapOffloads {
    private TapOffloads() {
    }

    /**
     * UFO in either direction, which no tap data plane offers: Linux's tun ignores TUN_F_UFO since
     * 4.14 (set_offload clears it), so a guest that acked GUEST_UFO would never get a UFO frame, and
     * HOST_UFO would only invite frames the guest's own stack no longer makes.
     */
    public static final long UFO = VirtioFeatures.bit(NetFeatures.GUEST_UFO) | VirtioFeatures.bit(NetFeatures.HOST_UFO);

    /** TUN_F_* flags for a set of virtio-net feature bits (only the GUEST_* ones are read). */
    public static int fromGuestFeatures(long features) {
        if (!VirtioFeatures.has(features, NetFeatures.GUEST_CSUM)) {
            return 0;
        }
        int flags = TunIoctls.TUN_F_CSUM;
        if (VirtioFeatures.has(features, NetFeatures.GUEST_TSO4)) {
            flags |= TunIoctls.TUN_F_TSO4;
        }
        if (VirtioFeatures.has(features, NetFeatures.GUEST_TSO6)) {
            flags |= TunIoctls.TUN_F_TSO6;
        }
        if (VirtioFeatures.has(features, NetFeatures.GUEST_ECN)) {
            flags |= TunIoctls.TUN_F_TSO_ECN;
        }
        if (VirtioFeatures.has(features, NetFeatures.GUEST_UFO)) {
            flags |= TunIoctls.TUN_F_UFO;
        }
        return flags;
    }
}
