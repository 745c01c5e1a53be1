package io.vmm4j.examples.rng;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.irq.IntxLine;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.driver.ConfigAccess;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.driver.GuestLocalApic;
import io.vmm4j.virtio.driver.PciFirmware;
import io.vmm4j.virtio.driver.VirtioPciDriver;
import io.vmm4j.virtio.pci.PciHost;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import io.vmm4j.virtio.pci.VirtioPciTransport.NotifyMode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reuse proof: virtio-rng, written against vmm-core and virtio-pci only, brought to DRIVER_OK
 * by the guest-side driver through bus accesses alone, serving entropy with MSI-X interrupts.
 */
class VirtioRngEndToEndTest {
    private static final long ECAM = 0xB000_0000L;
    private static final int REQUEST_VECTOR = 0x31;

    @ParameterizedTest(name = "{0} notify, config via {1}")
    @CsvSource({"IOEVENTFD, ports", "SYNCHRONOUS, ports", "IOEVENTFD, ecam"})
    void driverReadsEntropyThroughTheTransport(NotifyMode mode, String configAccess) throws Exception {
        try (GuestMemory memory = GuestMemory.builder().region(0, 2L << 20).build();
             EventLoop io = new EventLoop("rng-io");
             EventLoop irq = new EventLoop("irqfd-router")) {
            Bus pio = new Bus("pio");
            Bus mmio = new Bus("mmio");
            PciHost host = new PciHost(pio, mmio, ECAM);
            GuestLocalApic apic = new GuestLocalApic();
            VirtioRng rng = new VirtioRng(io, new SecureRandom());
            VirtioPciTransport transport = new VirtioPciTransport(rng, memory, mmio, apic::receive, IntxLine.NONE, irq, mode, 2);
            host.attach(host.freeSlot(), transport);

            ConfigAccess cfg = configAccess.equals("ecam") ? ConfigAccess.ecam(mmio, ECAM) : ConfigAccess.ports(pio);
            List<PciFirmware.Device> devices = PciFirmware.enumerateAndAssign(cfg, 0xC000_0000L, 0x100_0000L);
            PciFirmware.Device found = devices.stream()
                    .filter(d -> d.vendorId() == 0x1AF4 && d.deviceId() == 0x1040 + VirtioRng.DEVICE_TYPE)
                    .findFirst().orElseThrow(() -> new AssertionError("no virtio-rng among " + devices));

            GuestAllocator allocator = new GuestAllocator(0x1000, (2L << 20) - 0x1000);
            VirtioPciDriver driver = new VirtioPciDriver(cfg, mmio, memory, allocator, found);
            long acked = driver.negotiate(VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.EVENT_IDX));
            assertTrue(VirtioFeatures.has(acked, VirtioFeatures.EVENT_IDX));
            driver.enableMsix(2, 0x30);
            assertEquals(0, driver.setConfigVector(0));
            DriverQueue queue = driver.setupQueue(0, 0, 1);
            long notify = driver.notifyAddress(0);
            driver.driverOk();
            assertEquals(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK, driver.status());

            long seen = 0;
            for (int round = 0; round < 3; round++) {
                Map<Integer, long[]> posted = new HashMap<>();
                for (int i = 0; i < 4; i++) {
                    long buf = allocator.allocate(512, 16);
                    posted.put(queue.add(new long[] {buf}, new int[] {512}, 0), new long[] {buf, 512});
                }
                long a = allocator.allocate(100, 16);
                long b = allocator.allocate(100, 16);
                posted.put(queue.add(new long[] {a, b}, new int[] {100, 100}, 0), new long[] {a, 200});
                queue.publish();
                if (queue.needsKick()) {
                    driver.kick(notify, 0);
                }
                int returned = 0;
                while (returned < posted.size()) {
                    DriverQueue.Used used = queue.pollUsed();
                    if (used == null) {
                        long now = apic.awaitBeyond(REQUEST_VECTOR, seen, 10_000);
                        assertTrue(now > seen || queue.hasUsed(), "round " + round + ": no MSI-X interrupt for the request queue");
                        seen = now;
                        continue;
                    }
                    long[] buf = posted.get(used.head());
                    assertNotNull(buf, "used head " + used.head() + " was posted");
                    assertEquals(buf[1], used.length(), "the device fills the whole buffer");
                    byte[] data = new byte[(int) buf[1]];
                    memory.read(buf[0], data, 0, data.length);
                    assertTrue(!Arrays.equals(data, new byte[data.length]), "entropy is not all zeros");
                    returned++;
                }
            }
            assertTrue(apic.count(REQUEST_VECTOR) >= 1);
            assertEquals(3 * (4 * 512 + 200), rng.bytesServed());
            assertEquals(0, transport.status() & DeviceStatus.DEVICE_NEEDS_RESET);
            driver.reset();
            assertEquals(0, transport.status());
        }
    }
}
