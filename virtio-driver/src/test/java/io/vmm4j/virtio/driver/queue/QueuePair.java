package io.vmm4j.virtio.driver.queue;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.SplitQueue;

/**
 * A driver queue and a device queue on the same rings in canary-guarded guest memory: the guest's
 * and the device's view of one virtqueue.
 */
public final class QueuePair implements AutoCloseable {
    public final CanaryGuestMemory guest;
    public final GuestMemory memory;
    public final GuestAllocator allocator;
    public final DriverQueue driver;
    public final SplitQueue device;
    public final DescriptorChain chain;

    public QueuePair(int size, boolean eventIdx) {
        this(new CanaryGuestMemory(), size, eventIdx);
    }

    public QueuePair(CanaryGuestMemory guest, int size, boolean eventIdx) {
        this.guest = guest;
        this.memory = guest.memory();
        this.allocator = guest.allocatorOverA();
        this.driver = new DriverQueue(memory, allocator, size, eventIdx);
        this.device = newDevice();
        this.chain = new DescriptorChain(device.maxChainSegments());
    }

    /** Another device-side queue on the same rings (what a backend switch creates). */
    public SplitQueue newDevice() {
        return new SplitQueue(memory, driver.size(), driver.descTable(), driver.availRing(), driver.usedRing(), driver.eventIdx());
    }

    /** A guest buffer holding {@code content}. */
    public long buffer(byte[] content) {
        long address = allocator.allocate(Math.max(1, content.length), 8);
        memory.write(address, content, 0, content.length);
        return address;
    }

    /** A zeroed guest buffer of {@code length} bytes. */
    public long buffer(int length) {
        long address = allocator.allocate(Math.max(1, length), 8);
        memory.fill(address, Math.max(1, length), (byte) 0);
        return address;
    }

    public byte[] read(long address, int length) {
        return guest.read(address, length);
    }

    /** Device: pops one chain, failing the test if there is none. */
    public DescriptorChain popOne() {
        if (!device.pop(chain)) {
            throw new AssertionError("the device found no available chain");
        }
        return chain;
    }

    @Override
    public void close() {
        guest.close();
    }
}
