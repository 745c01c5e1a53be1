package io.vmm4j.examples.rng;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.driver.ConfigAccess;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.driver.GuestLocalApic;
import io.vmm4j.virtio.driver.PciFirmware;
import io.vmm4j.virtio.driver.VirtioPciDriver;
import io.vmm4j.virtio.pci.CommonConfig;
import io.vmm4j.virtio.pci.PciHost;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import io.vmm4j.virtio.pci.VirtioPciTransport.NotifyMode;
import io.vmm4j.virtio.queue.RingLayout;
import io.vmm4j.virtio.queue.SplitRing;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static io.vmm4j.virtio.queue.SplitRing.DESC_F_INDIRECT;
import static io.vmm4j.virtio.queue.SplitRing.DESC_F_NEXT;
import static io.vmm4j.virtio.queue.SplitRing.DESC_F_WRITE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A hostile driver against the real transport, queue engine and device: every malformed ring
 * ends in DEVICE_NEEDS_RESET and a config interrupt, with no exception escaping and not a byte
 * written outside guest memory (canary pages sit on both sides of the RAM region in its memfd).
 */
class MalformedRingTest {
    private static final long PAGE = GuestMemory.PAGE_SIZE;
    private static final long RAM_SIZE = 1L << 20;
    static final long RAM_END = RAM_SIZE;
    private static final byte CANARY = (byte) 0xA5;
    static final int CONFIG_VECTOR = 0x30;
    private static final int QUEUE_SIZE = 16;

    /** One VM with a hostile guest. */
    static final class Rig implements AutoCloseable {
        final MemorySegment file;
        final GuestMemory memory;
        final EventLoop io = new EventLoop("rng-io");
        final EventLoop irq = new EventLoop("irqfd-router");
        final GuestLocalApic apic = new GuestLocalApic();
        final VirtioPciTransport transport;
        final VirtioPciDriver driver;
        final GuestAllocator allocator = new GuestAllocator(0x1000, RAM_SIZE - 0x1000);
        DriverQueue queue;
        long notify;

        Rig(NotifyMode mode) {
            this(mode, RingLayout.SPLIT);
        }

        /** @param rings PACKED: the device offers VIRTIO_F_RING_PACKED and the driver acks it (queues laid out by hand) */
        Rig(NotifyMode mode, RingLayout rings) {
            int fd = LibC.memfdCreate("malformed-ring", LibC.MFD_CLOEXEC);
            LibC.ftruncate(fd, RAM_SIZE + 2 * PAGE);
            file = LibC.mmap(RAM_SIZE + 2 * PAGE, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, 0);
            file.asSlice(0, PAGE).fill(CANARY);
            file.asSlice(PAGE + RAM_SIZE, PAGE).fill(CANARY);
            memory = GuestMemory.builder().region(0, RAM_SIZE, fd, PAGE).build();
            Bus pio = new Bus("pio");
            Bus mmio = new Bus("mmio");
            PciHost host = new PciHost(pio, mmio, 0xB000_0000L);
            transport = new VirtioPciTransport(new VirtioRng(io, new SecureRandom(), rings), memory, mmio, apic::receive, IntxLine.NONE, irq, mode, 2);
            host.attach(1, transport);
            ConfigAccess cfg = ConfigAccess.ports(pio);
            PciFirmware.Device dev = PciFirmware.enumerateAndAssign(cfg, 0xC000_0000L, 0x100_0000L).stream()
                    .filter(d -> d.slot() == 1).findFirst().orElseThrow();
            driver = new VirtioPciDriver(cfg, mmio, memory, allocator, dev);
            driver.negotiate(VirtioFeatures.bit(VirtioFeatures.VERSION_1)
                    | (rings == RingLayout.PACKED ? VirtioFeatures.bit(VirtioFeatures.RING_PACKED) : 0));
            driver.enableMsix(2, CONFIG_VECTOR);
            driver.setConfigVector(0);
        }

        void bringUp() {
            queue = driver.setupQueue(0, QUEUE_SIZE, 1);
            notify = driver.notifyAddress(0);
            driver.driverOk();
        }

        void publishAndKick(int head) {
            queue.pushAvail(head);
            queue.publish();
            driver.kick(notify, 0);
        }

        long buffer(int size) {
            return allocator.allocate(size, 16);
        }

        void assertCanariesIntact() {
            for (long base : new long[] {0, PAGE + RAM_SIZE}) {
                for (long i = 0; i < PAGE; i++) {
                    if (file.get(ValueLayout.JAVA_BYTE, base + i) != CANARY) {
                        throw new AssertionError("canary byte changed at file offset 0x" + Long.toHexString(base + i));
                    }
                }
            }
        }

        @Override
        public void close() {
            io.close();
            irq.close();
            memory.close();
            LibC.munmap(file);
        }
    }

    record Case(String name, boolean layout, Consumer<Rig> attack) {
    }

    private static List<Case> cases() {
        List<Case> c = new ArrayList<>();
        // ---- descriptor chains (checked when the device pops) ----
        c.add(new Case("head index >= queue size", false, r -> r.publishAndKick(QUEUE_SIZE + 3)));
        c.add(new Case("next index >= queue size", false, r -> {
            r.queue.writeDescriptor(0, r.buffer(64), 64, DESC_F_WRITE | DESC_F_NEXT, QUEUE_SIZE);
            r.publishAndKick(0);
        }));
        c.add(new Case("loop in the chain", false, r -> {
            long b = r.buffer(64);
            r.queue.writeDescriptor(0, b, 32, DESC_F_WRITE | DESC_F_NEXT, 1);
            r.queue.writeDescriptor(1, b + 32, 32, DESC_F_WRITE | DESC_F_NEXT, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("chain longer than the queue", false, r -> {
            long b = r.buffer(16 * (QUEUE_SIZE + 1));
            for (int i = 0; i < QUEUE_SIZE; i++) {
                r.queue.writeDescriptor(i, b + 16L * i, 16, DESC_F_WRITE | DESC_F_NEXT, (i + 1) % QUEUE_SIZE);
            }
            r.publishAndKick(3);
        }));
        c.add(new Case("buffer outside guest memory", false, r -> {
            r.queue.writeDescriptor(0, 0x4000_0000L, 64, DESC_F_WRITE, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("buffer running past the end of memory", false, r -> {
            r.queue.writeDescriptor(0, RAM_END - 8, 64, DESC_F_WRITE, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("buffer address + length overflowing 64 bits", false, r -> {
            r.queue.writeDescriptor(0, 0xFFFF_FFFF_FFFF_FFF0L, 0x20, DESC_F_WRITE, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("avail idx more than queue size ahead", false, r -> {
            r.memory.storeReleaseShort(r.queue.availRing() + SplitRing.RING_IDX, (short) (QUEUE_SIZE + 5));
            r.driver.kick(r.notify, 0);
        }));
        c.add(new Case("readable descriptor after a writable one", false, r -> {
            long b = r.buffer(64);
            r.queue.writeDescriptor(0, b, 32, DESC_F_WRITE | DESC_F_NEXT, 1);
            r.queue.writeDescriptor(1, b + 32, 32, 0, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("INDIRECT together with NEXT", false, r -> {
            long table = r.buffer(32);
            r.queue.writeIndirectDescriptor(table, 0, r.buffer(64), 64, DESC_F_WRITE, 0);
            r.queue.writeDescriptor(0, table, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1);
            r.queue.writeDescriptor(1, r.buffer(64), 64, DESC_F_WRITE, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("indirect table of length 0", false, r -> {
            r.queue.writeDescriptor(0, r.buffer(32), 0, DESC_F_INDIRECT, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("indirect table length not a multiple of 16", false, r -> {
            long table = r.buffer(32);
            r.queue.writeIndirectDescriptor(table, 0, r.buffer(64), 64, DESC_F_WRITE, 0);
            r.queue.writeDescriptor(0, table, 24, DESC_F_INDIRECT, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("indirect table outside guest memory", false, r -> {
            r.queue.writeDescriptor(0, RAM_END - 16, 64, DESC_F_INDIRECT, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("nested indirect table", false, r -> {
            long inner = r.buffer(16);
            long outer = r.buffer(16);
            r.queue.writeIndirectDescriptor(inner, 0, r.buffer(64), 64, DESC_F_WRITE, 0);
            r.queue.writeIndirectDescriptor(outer, 0, inner, 16, DESC_F_INDIRECT, 0);
            r.queue.writeDescriptor(0, outer, 16, DESC_F_INDIRECT, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("indirect next index past the table", false, r -> {
            long table = r.buffer(32);
            r.queue.writeIndirectDescriptor(table, 0, r.buffer(64), 64, DESC_F_WRITE | DESC_F_NEXT, 2);
            r.queue.writeIndirectDescriptor(table, 1, r.buffer(64), 64, DESC_F_WRITE, 0);
            r.queue.writeDescriptor(0, table, 32, DESC_F_INDIRECT, 0);
            r.publishAndKick(0);
        }));
        c.add(new Case("loop inside an indirect table", false, r -> {
            long table = r.buffer(32);
            long b = r.buffer(64);
            r.queue.writeIndirectDescriptor(table, 0, b, 32, DESC_F_WRITE | DESC_F_NEXT, 1);
            r.queue.writeIndirectDescriptor(table, 1, b + 32, 32, DESC_F_WRITE | DESC_F_NEXT, 0);
            r.queue.writeDescriptor(0, table, 32, DESC_F_INDIRECT, 0);
            r.publishAndKick(0);
        }));
        // ---- ring layout (checked at DRIVER_OK) ----
        c.add(new Case("queue size not a power of two", true, r -> layout(r, 12, 0x8000, 0x9000, 0xA000)));
        c.add(new Case("queue size larger than the device allows", true, r -> layout(r, 512, 0x8000, 0x9000, 0xA000)));
        c.add(new Case("queue size 0", true, r -> layout(r, 0, 0x8000, 0x9000, 0xA000)));
        c.add(new Case("descriptor table misaligned", true, r -> layout(r, 16, 0x8008, 0x9000, 0xA000)));
        c.add(new Case("avail ring misaligned", true, r -> layout(r, 16, 0x8000, 0x9001, 0xA000)));
        c.add(new Case("used ring misaligned", true, r -> layout(r, 16, 0x8000, 0x9000, 0xA002)));
        c.add(new Case("used ring running past the end of memory", true, r -> layout(r, 16, 0x8000, 0x9000, RAM_END - 64)));
        c.add(new Case("descriptor table outside memory", true, r -> layout(r, 16, 0x1_0000_0000L, 0x9000, 0xA000)));
        return c;
    }

    static void layout(Rig r, int size, long desc, long avail, long used) {
        r.driver.writeCommon(CommonConfig.QUEUE_SELECT, 2, 0);
        r.driver.writeCommon(CommonConfig.QUEUE_SIZE, 2, size);
        r.driver.writeCommon(CommonConfig.QUEUE_DESC, 8, desc);
        r.driver.writeCommon(CommonConfig.QUEUE_DRIVER, 8, avail);
        r.driver.writeCommon(CommonConfig.QUEUE_DEVICE, 8, used);
        r.driver.writeCommon(CommonConfig.QUEUE_MSIX_VECTOR, 2, 1);
        r.driver.writeCommon(CommonConfig.QUEUE_ENABLE, 2, 1);
        r.driver.driverOk();
    }

    @TestFactory
    Stream<DynamicNode> everyMalformedRingNeedsResetAndTouchesNothingOutside() {
        return Stream.of(NotifyMode.values()).map(mode -> DynamicContainer.dynamicContainer(mode.name(),
                cases().stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
                    try (Rig r = new Rig(mode)) {
                        if (!c.layout()) {
                            r.bringUp();
                        }
                        long configIrqs = r.apic.count(CONFIG_VECTOR);
                        c.attack().accept(r); // no exception may escape to the notifying thread
                        long after = r.apic.awaitBeyond(CONFIG_VECTOR, configIrqs, 10_000);
                        assertEquals(configIrqs + 1, after, "exactly one config interrupt announces NEEDS_RESET");
                        assertTrue((r.transport.status() & DeviceStatus.DEVICE_NEEDS_RESET) != 0, "status has DEVICE_NEEDS_RESET");
                        assertNotNull(r.transport.lastError());
                        r.assertCanariesIntact();
                        if (r.queue != null) {
                            assertEquals(0, r.memory.readShort(r.queue.usedRing() + SplitRing.RING_IDX), "nothing was used");
                        }
                        // the driver recovers the way the spec says: reset, and the device comes back clean
                        r.driver.reset();
                        assertEquals(0, r.transport.status());
                    }
                }))));
    }

    @TestFactory
    Stream<DynamicTest> theWriteFlagOnAnIndirectTableDescriptorIsIgnored() {
        return Stream.of(NotifyMode.values()).map(mode -> DynamicTest.dynamicTest(mode.name(), () -> {
            try (Rig r = new Rig(mode)) {
                r.bringUp();
                long table = r.buffer(32);
                long b = r.buffer(96);
                r.queue.writeIndirectDescriptor(table, 0, b, 64, DESC_F_WRITE | DESC_F_NEXT, 1);
                r.queue.writeIndirectDescriptor(table, 1, b + 64, 32, DESC_F_WRITE, 0);
                // §2.7.5.3.2: the device must ignore the WRITE flag on the descriptor that refers to the table
                r.queue.writeDescriptor(0, table, 32, DESC_F_INDIRECT | DESC_F_WRITE, 0);
                r.publishAndKick(0);
                r.apic.awaitBeyond(0x31, 0, 10_000);
                assertEquals(1, r.memory.readShort(r.queue.usedRing() + SplitRing.RING_IDX));
                assertEquals(96, r.memory.readInt(r.queue.usedRing() + SplitRing.RING_ENTRIES + 4), "used length");
                assertEquals(0, r.transport.status() & DeviceStatus.DEVICE_NEEDS_RESET);
                r.assertCanariesIntact();
            }
        }));
    }
}
