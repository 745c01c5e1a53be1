package io.vmm4j.virtio.driver.transport;

import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.driver.VirtioPciDriver;
import io.vmm4j.virtio.pci.MsixTable;
import io.vmm4j.virtio.pci.PciConfigSpace;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MSI-X behaviour seen from the driver: programmed messages, masking, pending bits, NO_VECTOR. */
class MsixTest {
    private final RecordingDevice device = new RecordingDevice();
    private final TransportFixture vm = new TransportFixture(device, VirtioPciTransport.NotifyMode.IOEVENTFD);
    private final VirtioPciDriver driver = vm.driver;

    @AfterEach
    void close() {
        vm.close();
    }

    private long pbaBits() {
        return vm.mmio.read(vm.pci.barAddress()[VirtioPciTransport.MSIX_BAR] + VirtioPciTransport.MSIX_PBA_OFFSET, 8);
    }

    private void bringUp() {
        driver.negotiate(VirtioFeatures.bit(VirtioFeatures.VERSION_1));
        driver.enableMsix(4, 0x50);
        assertEquals(0, driver.setConfigVector(0));
        driver.setupQueue(0, 0, 1);
        driver.setupQueue(1, 0, 2);
        driver.driverOk();
    }

    @Test
    void theSinkSeesExactlyTheProgrammedAddressAndData() throws Exception {
        bringUp();
        driver.programVector(1, 0xFEE0_1000L, 0x4061);
        vm.transport.callFd(0).signal(); // the irqfd path: a data plane signals the call eventfd
        assertEquals(1, vm.apic.awaitBeyond(0x61, 0, 10_000));
        assertEquals(0xFEE0_1000L, vm.apic.lastAddress());
        assertEquals(0x4061, vm.apic.lastData());

        driver.programVector(2, 0x1_2345_6780L, 0x77);
        vm.transport.signalQueue(1);
        assertEquals(0x1_2345_6780L, vm.apic.lastAddress(), "64-bit message address, as programmed");
        assertEquals(0x77, vm.apic.lastData());
        assertEquals(1, vm.apic.strayCount(), "not an APIC address: the controller counts it as stray");
    }

    @Test
    void aMaskedVectorSetsItsPendingBitAndFiresOnceOnUnmask() {
        bringUp();
        driver.maskVector(1, true);
        vm.transport.signalQueue(0);
        vm.transport.signalQueue(0);
        assertEquals(0, vm.apic.count(0x51), "masked: nothing delivered");
        assertEquals(1L << 1, pbaBits(), "pending bit of vector 1");
        driver.maskVector(1, false);
        assertEquals(1, vm.apic.count(0x51), "delivered exactly once on unmask");
        assertEquals(0, pbaBits(), "pending cleared");
        driver.maskVector(1, true);
        driver.maskVector(1, false);
        assertEquals(1, vm.apic.count(0x51), "no second delivery without a new interrupt");
    }

    @Test
    void functionMaskHoldsEveryVector() {
        bringUp();
        int cap = msixCapability();
        int control = vm.configRead(cap + 2, 2);
        vm.configWrite(cap + 2, 2, control | (1 << 14));
        vm.transport.signalQueue(0);
        vm.transport.signalQueue(1);
        device.host.configChanged();
        assertEquals(0b111, pbaBits());
        assertEquals(0, vm.apic.count(0x50) + vm.apic.count(0x51) + vm.apic.count(0x52));
        vm.configWrite(cap + 2, 2, control & ~(1 << 14));
        assertEquals(1, vm.apic.count(0x50));
        assertEquals(1, vm.apic.count(0x51));
        assertEquals(1, vm.apic.count(0x52));
        assertEquals(0, pbaBits());
    }

    @Test
    void noVectorSuppressesTheInterrupt() {
        driver.negotiate(VirtioFeatures.bit(VirtioFeatures.VERSION_1));
        driver.enableMsix(4, 0x50);
        driver.setupQueue(0, 0, io.vmm4j.virtio.pci.MsixTable.NO_VECTOR);
        driver.driverOk();
        long before = vm.transport.msix().deliveredCount();
        vm.transport.signalQueue(0);
        device.host.configChanged(); // config vector also NO_VECTOR
        assertEquals(before, vm.transport.msix().deliveredCount());
        assertEquals(0, pbaBits(), "NO_VECTOR is not a pending vector");
        assertEquals(0, vm.intxLevel.get(), "with MSI-X on, INTx stays quiet");
    }

    @Test
    void vectorsStartMaskedAndTheTableIsReadable() {
        long table = vm.pci.barAddress()[VirtioPciTransport.MSIX_BAR] + VirtioPciTransport.MSIX_TABLE_OFFSET;
        for (int v = 0; v < 4; v++) {
            assertEquals(1, vm.mmio.read(table + 16L * v + 12, 4), "vector " + v + " is masked after reset");
        }
        driver.programVector(2, 0xFEE0_0000L, 0x99);
        assertEquals(0xFEE0_0000L, vm.mmio.read(table + 32, 4));
        assertEquals(0x99, vm.mmio.read(table + 40, 4));
        assertTrue(vm.transport.msix().isMasked(2));
        assertFalse(vm.transport.msix().enabled());
    }

    private int msixCapability() {
        int pos = vm.configRead(PciConfigSpace.CAPABILITIES_POINTER, 1);
        while (pos != 0 && vm.configRead(pos, 1) != MsixTable.CAPABILITY_ID) {
            pos = vm.configRead(pos + 1, 1);
        }
        return pos;
    }
}
