package io.vmm4j.examples.rng;

import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.pci.VirtioPciTransport.NotifyMode;
import io.vmm4j.virtio.queue.PackedRing;
import io.vmm4j.virtio.queue.RingLayout;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static io.vmm4j.virtio.queue.PackedRing.DESC_F_AVAIL;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_INDIRECT;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_NEXT;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_USED;
import static io.vmm4j.virtio.queue.PackedRing.DESC_F_WRITE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packed-ring rules a hostile driver can break (virtio 1.2 §2.8), against the real transport,
 * the packed engine and the rng device, in both notify modes: each case ends in DEVICE_NEEDS_RESET
 * and exactly one config interrupt, nothing is used, no byte outside guest memory changes (canary
 * pages around the RAM region), and a reset brings the device back. The descriptor ring is
 * written byte by byte as a driver would; every case starts on a fresh ring (both wrap counters 1).
 * The engine-level table with every case and its message is virtio-driver's PackedMalformedRingTest.
 */
class PackedMalformedRingTransportTest {
    private static final int SIZE = 8;
    /** "Available in the first lap": AVAIL = wrap counter 1, USED = 0 (§2.8.1). */
    private static final int AVAIL1 = DESC_F_AVAIL;

    /** The rings a case writes into, laid out at DRIVER_OK. */
    record Ring(MalformedRingTest.Rig rig, long desc, long driverEvent, long deviceEvent, long buf, long table) {
        void descriptor(int slot, long addr, int len, int id, int flags) {
            long d = desc + (long) slot * PackedRing.DESCRIPTOR_SIZE;
            rig.memory.writeLong(d + PackedRing.DESCRIPTOR_ADDR, addr);
            rig.memory.writeInt(d + PackedRing.DESCRIPTOR_LEN, len);
            rig.memory.writeShort(d + PackedRing.DESCRIPTOR_ID, (short) id);
            rig.memory.writeShort(d + PackedRing.DESCRIPTOR_FLAGS, (short) flags);
        }

        void indirectEntry(int index, long addr, int len, int flags) {
            long e = table + 16L * index;
            rig.memory.writeLong(e, addr);
            rig.memory.writeInt(e + 8, len);
            rig.memory.writeShort(e + 12, (short) 0);
            rig.memory.writeShort(e + 14, (short) flags);
        }

        void kick() {
            rig.driver.kick(rig.driver.notifyAddress(0), 0);
        }
    }

    record Case(String name, Consumer<Ring> attack) {
    }

    private static List<Case> cases() {
        List<Case> c = new ArrayList<>();
        // ids (§2.8.4: below the queue size, one buffer per id in flight)
        c.add(new Case("buffer id beyond the queue", r -> r.descriptor(0, r.buf(), 64, SIZE + 3, AVAIL1 | DESC_F_WRITE)));
        c.add(new Case("buffer id reused while in flight", r -> {
            r.descriptor(1, r.buf(), 64, 0, AVAIL1 | DESC_F_WRITE);
            r.descriptor(0, r.buf() + 64, 64, 0, AVAIL1 | DESC_F_WRITE);
        }));
        // wrap counters and flags (§2.8.1)
        c.add(new Case("AVAIL and USED both set in the first lap (marked used before the device used it)",
                r -> r.descriptor(0, r.buf(), 64, 0, DESC_F_AVAIL | DESC_F_USED | DESC_F_WRITE)));
        // chains (§2.8.6)
        c.add(new Case("chain longer than the queue", r -> {
            for (int i = SIZE - 1; i >= 0; i--) {
                r.descriptor(i, r.buf(), 8, 0, AVAIL1 | DESC_F_WRITE | DESC_F_NEXT);
            }
        }));
        // addresses and lengths
        c.add(new Case("buffer past the end of guest memory", r -> r.descriptor(0, MalformedRingTest.RAM_END - 4, 64, 0,
                AVAIL1 | DESC_F_WRITE)));
        c.add(new Case("address plus length wraps 2^64", r -> r.descriptor(0, -4L, 64, 0, AVAIL1 | DESC_F_WRITE)));
        c.add(new Case("length of 2^31 bytes or more", r -> r.descriptor(0, r.buf(), 0x8000_0000, 0, AVAIL1 | DESC_F_WRITE)));
        // indirect tables (§2.8.7)
        c.add(new Case("INDIRECT together with NEXT", r -> {
            r.indirectEntry(0, r.buf(), 64, DESC_F_WRITE);
            r.descriptor(1, r.buf(), 64, 1, AVAIL1 | DESC_F_WRITE);
            r.descriptor(0, r.table(), 16, 0, AVAIL1 | DESC_F_INDIRECT | DESC_F_NEXT);
        }));
        c.add(new Case("indirect table inside an indirect table", r -> {
            r.indirectEntry(0, r.table(), 16, DESC_F_INDIRECT);
            r.descriptor(0, r.table(), 16, 0, AVAIL1 | DESC_F_INDIRECT);
        }));
        c.add(new Case("indirect table length not a multiple of 16", r -> {
            r.indirectEntry(0, r.buf(), 64, DESC_F_WRITE);
            r.descriptor(0, r.table(), 20, 0, AVAIL1 | DESC_F_INDIRECT);
        }));
        // the driver event suppression structure (§2.8.10): flags 3 is reserved; read when the device decides on an interrupt
        c.add(new Case("reserved flags in the driver event suppression structure", r -> {
            r.rig().memory.writeShort(r.driverEvent() + 2, (short) 3);
            r.descriptor(0, r.buf(), 64, 0, AVAIL1 | DESC_F_WRITE);
        }));
        c.add(new Case("zero-length buffer outside guest memory", r -> r.descriptor(0, MalformedRingTest.RAM_END, 0, 0,
                AVAIL1 | DESC_F_WRITE)));
        return c;
    }

    @TestFactory
    Stream<DynamicNode> everyMalformedPackedRingNeedsResetAndTouchesNothingOutside() {
        return Stream.of(NotifyMode.values()).map(mode -> DynamicContainer.dynamicContainer(mode.name(),
                cases().stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
                    try (MalformedRingTest.Rig rig = new MalformedRingTest.Rig(mode, RingLayout.PACKED)) {
                        long desc = rig.allocator.allocate(PackedRing.descriptorRingBytes(SIZE), PackedRing.DESCRIPTOR_RING_ALIGNMENT);
                        long driverEvent = rig.allocator.allocate(4, 4);
                        long deviceEvent = rig.allocator.allocate(4, 4);
                        Ring r = new Ring(rig, desc, driverEvent, deviceEvent, rig.buffer(256), rig.buffer(64));
                        MalformedRingTest.layout(rig, SIZE, desc, driverEvent, deviceEvent);
                        assertEquals(0, rig.transport.status() & DeviceStatus.DEVICE_NEEDS_RESET, "the packed layout is valid");
                        long configIrqs = rig.apic.count(MalformedRingTest.CONFIG_VECTOR);
                        c.attack().accept(r);
                        r.kick(); // no exception may escape to the notifying thread
                        long after = rig.apic.awaitBeyond(MalformedRingTest.CONFIG_VECTOR, configIrqs, 10_000);
                        assertEquals(configIrqs + 1, after, "exactly one config interrupt announces NEEDS_RESET");
                        assertTrue((rig.transport.status() & DeviceStatus.DEVICE_NEEDS_RESET) != 0, "status has DEVICE_NEEDS_RESET");
                        assertNotNull(rig.transport.lastError());
                        rig.assertCanariesIntact();
                        if (!c.name().startsWith("reserved flags")) {
                            // nothing was used: no descriptor has the first lap's USED bit (1), so none reads as used
                            for (int slot = 0; slot < SIZE; slot++) {
                                int flags = rig.memory.readShort(desc + 16L * slot + PackedRing.DESCRIPTOR_FLAGS) & 0xFFFF;
                                assertEquals(0, flags & DESC_F_USED & ~(c.name().startsWith("AVAIL and USED") && slot == 0
                                        ? DESC_F_USED : 0), "slot " + slot + " was not written used");
                            }
                        }
                        rig.driver.reset(); // §2.1.2: the driver resets, the device comes back clean
                        assertEquals(0, rig.transport.status());
                    }
                }))));
    }
}
