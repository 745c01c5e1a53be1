package io.vmm4j.virtio.driver.transport;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.ActivationContext;
import io.vmm4j.virtio.QueueBinding;
import io.vmm4j.virtio.VirtioDeviceHost;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.QueuePositions;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.PackedRing;
import io.vmm4j.virtio.queue.RingLayout;
import io.vmm4j.virtio.queue.Virtqueue;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * At DRIVER_OK the device hands its data plane positions where the driver's fresh rings start:
 * index 0 for split, offset 0 with both wrap counters 1 for packed (virtio 1.2 §2.8.1). A packed ring
 * resumed at "0" (wrap counter 0) took the zeroed descriptors of a fresh ring for used ones and
 * broke at the first kick: the stock Linux guest's first boot with --ring packed.
 */
class VirtioNetRingStartTest {
    @ParameterizedTest
    @EnumSource(RingLayout.class)
    void theDataPlaneStartsWhereAFreshRingOfTheNegotiatedLayoutStarts(RingLayout layout) {
        GuestMemory memory = GuestMemory.builder().region(0, 1 << 20).build();
        RecordingNetBackend backend = new RecordingNetBackend(-1L, 1);
        List<EventFd> fds = new ArrayList<>();
        try (EventLoop control = new EventLoop("control")) {
            VirtioNet net = new VirtioNet(new NetConfig(new byte[] {0x52, 0, 0, 0, 0, 1}, 1500, 1, 256, RingLayout.PACKED), backend,
                    control);
            net.bind(new VirtioDeviceHost() {
                @Override
                public void configChanged() {
                }

                @Override
                public void deviceError(String reason) {
                    throw new AssertionError(reason);
                }
            });
            long acked = VirtioFeatures.bit(VirtioFeatures.VERSION_1)
                    | (layout == RingLayout.PACKED ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0);
            List<QueueBinding> queues = new ArrayList<>();
            for (int q = 0; q < 2; q++) {
                EventFd kick = EventFd.create();
                EventFd call = EventFd.create();
                fds.add(kick);
                fds.add(call);
                long base = 0x10000L * (q + 1);
                queues.add(new QueueBinding(q, 256, layout, false, base, base + 0x8000, base + 0x9000, false, memory, kick, call,
                        false, call::signal));
            }
            queues.add(null); // no control queue
            net.activate(new ActivationContext(memory, acked, queues, null));

            QueuePositions resume = backend.activation.resume();
            assertEquals(QueuePositions.start(2, layout).toString(), resume.toString());
            // the driver makes one buffer available at slot 0 of its fresh ring; the engine resumed there must take it
            QueueBinding rx = queues.get(0);
            Virtqueue engine = rx.openQueue();
            engine.setPosition(resume.nextAvail(0), resume.nextUsed(0));
            if (layout == RingLayout.PACKED) {
                long d = rx.descTable();
                memory.writeLong(d + PackedRing.DESCRIPTOR_ADDR, 0x40000);
                memory.writeInt(d + PackedRing.DESCRIPTOR_LEN, 2048);
                memory.writeShort(d + PackedRing.DESCRIPTOR_ID, (short) 0);
                memory.writeShort(d + PackedRing.DESCRIPTOR_FLAGS, (short) (PackedRing.DESC_F_WRITE | PackedRing.DESC_F_AVAIL));
            } else {
                long d = rx.descTable();
                memory.writeLong(d, 0x40000);
                memory.writeInt(d + 8, 2048);
                memory.writeShort(d + 12, (short) 2); // VIRTQ_DESC_F_WRITE
                memory.writeShort(rx.availRing() + 4, (short) 0); // ring[0] = descriptor 0
                memory.writeShort(rx.availRing() + 2, (short) 1); // idx = 1
            }
            DescriptorChain chain = new DescriptorChain(engine.maxChainSegments());
            assertTrue(engine.pop(chain), "the first buffer of the fresh " + layout.label() + " ring is available");
            assertEquals(2048, chain.writableBytes());
            net.reset();
        } finally {
            fds.forEach(EventFd::close);
        }
    }
}
