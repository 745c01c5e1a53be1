package io.vmm4j.vhost.kernel;

import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the device offers over vhost-net, from the bits a kernel reports (no /dev/vhost-net needed). */
class VhostNetOfferTest {
    /** VHOST_GET_FEATURES as Linux 6.1 reports it: NOTIFY_ON_EMPTY (24), ANY_LAYOUT/VHOST_NET_F_VIRTIO_NET_HDR (27), the ring bits, MRG_RXBUF, VERSION_1, ACCESS_PLATFORM. */
    private static final long KERNEL_6_1 = VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.ACCESS_PLATFORM)
            | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX) | VirtioFeatures.bit(VirtioFeatures.INDIRECT_DESC) | VirtioFeatures.bit(24)
            | VirtioFeatures.bit(NetFeatures.MRG_RXBUF) | VirtioFeatures.bit(27);

    @Test
    void kernelBitsPassOnlyWhenTheKernelReportsThemAndTheRestPassThrough() {
        long offer = VhostNetBackend.offer(KERNEL_6_1);
        for (int bit : new int[]{VirtioFeatures.VERSION_1, VirtioFeatures.EVENT_IDX, NetFeatures.MRG_RXBUF}) {
            assertTrue(VirtioFeatures.has(offer, bit), "kernel bit " + bit + " reported: offered");
        }
        assertFalse(VirtioFeatures.has(offer, VirtioFeatures.RING_PACKED), "packed: not reported by the kernel, not offered");
        assertFalse(VirtioFeatures.has(offer, NetFeatures.MTU), "MTU is a kernel bit vhost-net never reports (as QEMU masks it)");
        for (int bit : new int[]{NetFeatures.CSUM, NetFeatures.GUEST_CSUM, NetFeatures.GUEST_TSO4, NetFeatures.HOST_TSO6, NetFeatures.CTRL_VQ,
                NetFeatures.MQ, NetFeatures.STATUS}) {
            assertTrue(VirtioFeatures.has(offer, bit), "the VMM's and the tap's bit " + bit + " passes through");
        }
    }

    @Test
    void ufoIsNeverOfferedAsTheTapIgnoresIt() {
        long offer = VhostNetBackend.offer(-1L);
        assertFalse(VirtioFeatures.has(offer, NetFeatures.GUEST_UFO));
        assertFalse(VirtioFeatures.has(offer, NetFeatures.HOST_UFO));
    }
}
