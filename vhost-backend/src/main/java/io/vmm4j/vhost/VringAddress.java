package io.vmm4j.vhost;

import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.QueueBinding;
import io.vmm4j.virtio.queue.SplitRing;

/**
 * Where a vring's three areas are, as the vhost protocol carries them ({@code struct
 * vhost_vring_addr}, vhost-user's vring address description): the front-end's host-virtual (user)
 * addresses of the descriptor table, the used ring and the available ring. The descriptor
 * addresses inside the rings stay guest-physical and go through the memory table.
 */
public record VringAddress(long descriptorTable, long usedRing, long availRing) {
    /** Where {@code queue}'s rings are mapped in this process, each area checked to lie inside {@code memory}. */
    public static VringAddress of(GuestMemory memory, QueueBinding queue) {
        int size = queue.size();
        return new VringAddress(memory.hostAddress(queue.descTable(), SplitRing.descriptorTableBytes(size)),
                memory.hostAddress(queue.usedRing(), SplitRing.usedRingBytes(size)),
                memory.hostAddress(queue.availRing(), SplitRing.availRingBytes(size)));
    }

    @Override
    public String toString() {
        return String.format("{desc 0x%x, used 0x%x, avail 0x%x}", descriptorTable, usedRing, availRing);
    }
}
