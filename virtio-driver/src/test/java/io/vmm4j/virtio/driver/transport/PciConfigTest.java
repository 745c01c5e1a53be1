package io.vmm4j.virtio.driver.transport;

import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.driver.ConfigAccess;
import io.vmm4j.virtio.pci.CommonConfig;
import io.vmm4j.virtio.pci.MsixTable;
import io.vmm4j.virtio.pci.PciConfigSpace;
import io.vmm4j.virtio.pci.VirtioPciCapability;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** PCI configuration space of a virtio device, seen only through CF8/CFC and ECAM accesses. */
class PciConfigTest {
    private final RecordingDevice device = new RecordingDevice();
    private final TransportFixture vm = new TransportFixture(device, VirtioPciTransport.NotifyMode.IOEVENTFD);

    @AfterEach
    void close() {
        vm.close();
    }

    @Test
    void headerIdentifiesAModernVirtioDevice() {
        assertEquals(0x1AF4, vm.configRead(PciConfigSpace.VENDOR_ID, 2));
        assertEquals(0x1040 + RecordingDevice.TYPE, vm.configRead(PciConfigSpace.DEVICE_ID, 2));
        assertEquals(1, vm.configRead(PciConfigSpace.REVISION_ID, 1), "modern-only devices have revision >= 1 (§4.1.2.1)");
        assertEquals(0x020000, vm.configRead(PciConfigSpace.REVISION_ID, 4) >>> 8, "class code");
        assertEquals(0x1AF4, vm.configRead(PciConfigSpace.SUBSYSTEM_VENDOR_ID, 2));
        assertTrue(vm.configRead(PciConfigSpace.SUBSYSTEM_ID, 2) >= 0x40);
        assertEquals(0, vm.configRead(PciConfigSpace.HEADER_TYPE, 1));
        assertEquals(1, vm.configRead(PciConfigSpace.INTERRUPT_PIN, 1), "INTA#");
        assertTrue((vm.configRead(PciConfigSpace.STATUS, 2) & PciConfigSpace.STATUS_CAPABILITIES) != 0);
    }

    @Test
    void ecamAndPortAccessSeeTheSameSpaceAndEmptySlotsReadAllOnes() {
        ConfigAccess ecam = ConfigAccess.ecam(vm.mmio, TransportFixture.ECAM);
        for (int off = 0; off < 0x100; off += 4) {
            assertEquals(vm.configRead(off, 4), ecam.read(3, off, 4), "dword at 0x" + Integer.toHexString(off));
        }
        assertEquals(0xFFFF, vm.cfg.read(7, PciConfigSpace.VENDOR_ID, 2));
        assertEquals(-1, ecam.read(7, 0, 4));
        assertEquals(0x1B36, vm.cfg.read(0, PciConfigSpace.VENDOR_ID, 2), "the host bridge sits in slot 0");
        assertEquals(0x06, vm.cfg.read(0, 0x0B, 1), "host bridge class");
    }

    @Test
    void barSizingReturnsTheSizeMaskAndFlags() {
        vm.configWrite(PciConfigSpace.COMMAND, 2, 0);
        vm.configWrite(PciConfigSpace.BAR0, 4, -1);
        vm.configWrite(PciConfigSpace.BAR0 + 4, 4, -1);
        assertEquals(~(VirtioPciTransport.VIRTIO_BAR_SIZE - 1) | 0x4, vm.configRead(PciConfigSpace.BAR0, 4), "size mask, 64-bit memory BAR");
        assertEquals(-1, vm.configRead(PciConfigSpace.BAR0 + 4, 4));
        vm.configWrite(PciConfigSpace.BAR0 + 8, 4, -1);
        assertEquals(~(VirtioPciTransport.MSIX_BAR_SIZE - 1) | 0x4, vm.configRead(PciConfigSpace.BAR0 + 8, 4));
        vm.configWrite(PciConfigSpace.BAR0 + 16, 4, -1);
        assertEquals(0, vm.configRead(PciConfigSpace.BAR0 + 16, 4), "an absent BAR reads 0 after sizing");
    }

    @Test
    void barsAreDecodedOnlyWithMemorySpaceEnabledAndFollowAMove() {
        long bar0 = vm.pci.barAddress()[0];
        long statusAddress = bar0 + VirtioPciTransport.COMMON_OFFSET + CommonConfig.NUM_QUEUES;
        assertEquals(2, vm.mmio.read(statusAddress, 2), "firmware placed BAR 0 and enabled decode");
        assertEquals(bar0, vm.transport.configSpace().barAddress(0));

        int command = vm.configRead(PciConfigSpace.COMMAND, 2);
        vm.configWrite(PciConfigSpace.COMMAND, 2, command & ~PciConfigSpace.COMMAND_MEMORY);
        assertEquals(0xFFFF, vm.mmio.read(statusAddress, 2), "decode off: nobody answers");
        assertEquals(-1, vm.transport.configSpace().barAddress(0));

        long moved = 0xD000_0000L;
        vm.configWrite(PciConfigSpace.BAR0, 4, (int) moved);
        vm.configWrite(PciConfigSpace.BAR0 + 4, 4, 0);
        vm.configWrite(PciConfigSpace.COMMAND, 2, command);
        assertEquals(2, vm.mmio.read(moved + CommonConfig.NUM_QUEUES, 2));
        assertEquals(0xFFFF, vm.mmio.read(statusAddress, 2), "the old place is free");

        vm.configWrite(PciConfigSpace.BAR0 + 4, 4, 1);
        assertEquals(2, vm.mmio.read((1L << 32) + moved + CommonConfig.NUM_QUEUES, 2), "64-bit BARs decode above 4 GiB");
    }

    @Test
    void onlyWritableCommandBitsStick() {
        vm.configWrite(PciConfigSpace.COMMAND, 2, 0xFFFF);
        assertEquals(PciConfigSpace.COMMAND_IO | PciConfigSpace.COMMAND_MEMORY | PciConfigSpace.COMMAND_BUS_MASTER
                | PciConfigSpace.COMMAND_INTX_DISABLE, vm.configRead(PciConfigSpace.COMMAND, 2));
        vm.configWrite(PciConfigSpace.VENDOR_ID, 2, 0x1234);
        assertEquals(0x1AF4, vm.configRead(PciConfigSpace.VENDOR_ID, 2), "IDs are read-only");
    }

    record Cap(int offset, int id, int cfgType, int bar, long offsetInBar, long length, int extra) {
    }

    private List<Cap> walk() {
        List<Cap> caps = new ArrayList<>();
        int pos = vm.configRead(PciConfigSpace.CAPABILITIES_POINTER, 1);
        while (pos != 0) {
            int id = vm.configRead(pos, 1);
            if (id == VirtioPciCapability.VENDOR_SPECIFIC_ID) {
                caps.add(new Cap(pos, id, vm.configRead(pos + 3, 1), vm.configRead(pos + 4, 1),
                        vm.configRead(pos + 8, 4) & 0xFFFF_FFFFL, vm.configRead(pos + 12, 4) & 0xFFFF_FFFFL,
                        vm.configRead(pos + 2, 1) >= 20 ? vm.configRead(pos + 16, 4) : -1));
            } else {
                caps.add(new Cap(pos, id, 0, 0, 0, 0, vm.configRead(pos + 2, 2)));
            }
            pos = vm.configRead(pos + 1, 1);
        }
        return caps;
    }

    @Test
    void capabilityListHasTheFiveVirtioStructuresAndMsix() {
        List<Cap> caps = walk();
        assertEquals(6, caps.size(), caps.toString());
        Cap common = caps.get(0);
        assertEquals(VirtioPciCapability.COMMON_CFG, common.cfgType());
        assertEquals(VirtioPciTransport.COMMON_OFFSET, common.offsetInBar());
        assertTrue(common.length() >= CommonConfig.SIZE);
        Cap notify = caps.get(1);
        assertEquals(VirtioPciCapability.NOTIFY_CFG, notify.cfgType());
        assertEquals(VirtioPciTransport.NOTIFY_MULTIPLIER, notify.extra(), "notify_off_multiplier");
        assertEquals(VirtioPciCapability.ISR_CFG, caps.get(2).cfgType());
        assertEquals(VirtioPciCapability.DEVICE_CFG, caps.get(3).cfgType());
        assertEquals(8, caps.get(3).length());
        assertEquals(VirtioPciCapability.PCI_CFG, caps.get(4).cfgType());
        Cap msix = caps.get(5);
        assertEquals(MsixTable.CAPABILITY_ID, msix.id());
        assertEquals(3, msix.extra() & 0x7FF, "table size N-1 for 4 vectors");
        for (Cap c : caps.subList(0, 4)) {
            assertEquals(VirtioPciTransport.VIRTIO_BAR, c.bar());
            assertTrue(c.offset() % 4 == 0, "capabilities are dword aligned");
        }
        assertEquals(VirtioPciTransport.MSIX_BAR, vm.configRead(msix.offset() + 4, 4) & 7, "table BIR");
        assertEquals(VirtioPciTransport.MSIX_PBA_OFFSET | VirtioPciTransport.MSIX_BAR, vm.configRead(msix.offset() + 8, 4));

        // capability bodies are read-only to the guest
        vm.configWrite(common.offset() + 8, 4, 0x1234);
        assertEquals(VirtioPciTransport.COMMON_OFFSET, vm.configRead(common.offset() + 8, 4));
    }

    @Test
    void pciCfgWindowReachesTheCommonConfiguration() {
        Cap window = walk().get(4);
        vm.configWrite(window.offset() + VirtioPciCapability.BAR, 1, VirtioPciTransport.VIRTIO_BAR);
        vm.configWrite(window.offset() + VirtioPciCapability.OFFSET, 4, CommonConfig.NUM_QUEUES);
        vm.configWrite(window.offset() + VirtioPciCapability.LENGTH, 4, 2);
        assertEquals(2, vm.configRead(window.offset() + VirtioPciCapability.PCI_CFG_DATA, 4) & 0xFFFF);

        vm.configWrite(window.offset() + VirtioPciCapability.OFFSET, 4, CommonConfig.DEVICE_STATUS);
        vm.configWrite(window.offset() + VirtioPciCapability.LENGTH, 4, 1);
        vm.configWrite(window.offset() + VirtioPciCapability.PCI_CFG_DATA, 4, DeviceStatus.ACKNOWLEDGE);
        assertEquals(DeviceStatus.ACKNOWLEDGE, vm.transport.status(), "a write through the window reaches the register");

        vm.configWrite(window.offset() + VirtioPciCapability.LENGTH, 4, 3);
        assertEquals(0, vm.configRead(window.offset() + VirtioPciCapability.PCI_CFG_DATA, 4), "length 3 is not a valid access");
        assertFalse(vm.transport.status() == 0);
    }
}
