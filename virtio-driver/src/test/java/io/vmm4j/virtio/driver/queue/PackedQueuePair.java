package io.vmm4j.virtio.driver.queue;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.PackedQueue;

/** A packed driver ring and a device queue on it in canary-guarded guest memory, as {@link QueuePair} for split. */
final class PackedQueuePair implements AutoCloseable {
    final CanaryGuestMemory guest;
    final GuestMemory memory;
    final GuestAllocator allocator;
    final PackedDriverRing driver;
    final PackedQueue device;
    final DescriptorChain chain;

    PackedQueuePair(int size, boolean eventIdx, boolean inOrder) {
        this(new CanaryGuestMemory(), size, eventIdx, inOrder);
    }

    PackedQueuePair(CanaryGuestMemory guest, int size, boolean eventIdx, boolean inOrder) {
        this.guest = guest;
        this.memory = guest.memory();
        this.allocator = guest.allocatorOverA();
        this.driver = new PackedDriverRing(memory, allocator, size, eventIdx, inOrder);
        this.device = newDevice();
        this.chain = new DescriptorChain(device.maxChainSegments());
    }

    /** Another device-side queue on the same ring (what a backend switch creates). */
    PackedQueue newDevice() {
        return new PackedQueue(memory, driver.size, driver.descRing, driver.driverArea, driver.deviceArea, driver.eventIdx,
                driver.inOrder);
    }

    long buffer(byte[] content) {
        long address = allocator.allocate(Math.max(1, content.length), 8);
        memory.write(address, content, 0, content.length);
        return address;
    }

    long buffer(int length) {
        long address = allocator.allocate(Math.max(1, length), 8);
        memory.fill(address, Math.max(1, length), (byte) 0);
        return address;
    }

    byte[] read(long address, int length) {
        return guest.read(address, length);
    }

    DescriptorChain popOne() {
        if (!device.pop(chain)) {
            throw new AssertionError("the device found no available buffer");
        }
        return chain;
    }

    @Override
    public void close() {
        guest.close();
    }
}
