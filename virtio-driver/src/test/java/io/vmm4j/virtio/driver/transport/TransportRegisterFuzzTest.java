package io.vmm4j.virtio.driver.transport;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.CommonConfig;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import org.junit.jupiter.api.AfterAll;

import static io.vmm4j.virtio.pci.VirtioPciTransport.MSIX_BAR;
import static io.vmm4j.virtio.pci.VirtioPciTransport.VIRTIO_BAR;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzz target: the transport's register file as a guest reaches it, in front of a recording device
 * or of virtio-net (whose DRIVER_OK starts a data plane and a control queue on the rings the input
 * programmed). Each input is a sequence of
 * PCI configuration reads and writes (header, BARs, command register, capability list, MSI-X
 * control), BAR moves, and reads and writes of the virtio BAR (common config, ISR, device config,
 * notify) and the MSI-X BAR (table and PBA), at any offset and size 1/2/4/8, with offsets biased
 * towards the registers. Invariants: no guest access throws (a register access is a VM exit: it
 * completes, maybe with no effect); the function stays on the bus where the guest put its BARs;
 * every input ends within a bounded number of accesses and a time bound; nothing is written
 * outside guest memory (canary pages around it and between its regions); a reset (status 0)
 * always brings the device back to status 0, and the next input starts from firmware's layout.
 */
class TransportRegisterFuzzTest {
    private static final int MAX_ACCESSES = 128;
    private static final long MAX_NANOS_PER_INPUT = 2_000_000_000L;
    private static final int[] SIZES = {1, 2, 4, 8};

    private static final byte[] MAC = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    /** [0]: a recording device with two queues; [1]: virtio-net with two pairs and a control queue the VMM serves. */
    private static final TransportFixture[] vms = new TransportFixture[2];
    private static final long[][] firmwareBars = new long[2][];
    private static EventLoop control;
    private static RecordingNetBackend netBackend;

    private static TransportFixture vm(int which) {
        if (vms[which] == null) {
            if (which == 0) {
                vms[0] = new TransportFixture(new RecordingDevice(), VirtioPciTransport.NotifyMode.IOEVENTFD);
            } else {
                control = new EventLoop("transport-fuzz-ctrl");
                netBackend = new RecordingNetBackend(-1L, 2);
                vms[1] = new TransportFixture(new VirtioNet(new NetConfig(MAC, 1500, 2, 256), netBackend, control),
                        VirtioPciTransport.NotifyMode.IOEVENTFD, 6);
            }
            firmwareBars[which] = vms[which].pci.barAddress().clone();
        }
        return vms[which];
    }

    @AfterAll
    static void close() {
        for (int i = 0; i < vms.length; i++) {
            if (vms[i] != null) {
                restoreFirmwareLayout(vms[i], firmwareBars[i]); // the device stops touching guest memory before it is unmapped
                vms[i].close();
                vms[i] = null;
            }
        }
        if (control != null) {
            control.close();
            control = null;
        }
    }

    @FuzzTest(maxDuration = "20s")
    void registerFile(FuzzedDataProvider data) {
        int which = data.consumeInt(0, 1);
        TransportFixture f = vm(which);
        long[] bars = firmwareBars[which];
        restoreFirmwareLayout(f, bars);
        if (netBackend != null) {
            synchronized (netBackend) {
                netBackend.log.clear(); // the recording would grow with every input
            }
        }
        long started = System.nanoTime();
        for (int i = 0; i < MAX_ACCESSES && data.remainingBytes() > 0; i++) {
            switch (data.consumeInt(0, 6)) {
                case 0 -> f.configRead(configOffset(data), data.pickValue(new int[] {1, 2, 4}));
                case 1 -> f.configWrite(configOffset(data), data.pickValue(new int[] {1, 2, 4}), data.consumeInt());
                case 2 -> moveBar(f, data.consumeBoolean() ? VIRTIO_BAR : MSIX_BAR, data);
                case 3 -> f.mmio.read(bar(f, VIRTIO_BAR) + virtioOffset(data), data.pickValue(SIZES));
                case 4 -> f.mmio.write(bar(f, VIRTIO_BAR) + virtioOffset(data), data.pickValue(SIZES), value(data));
                case 5 -> f.mmio.read(bar(f, MSIX_BAR) + data.consumeInt(-8, VirtioPciTransport.MSIX_BAR_SIZE + 8), data.pickValue(SIZES));
                default -> f.mmio.write(bar(f, MSIX_BAR) + data.consumeInt(-8, VirtioPciTransport.MSIX_BAR_SIZE + 8),
                        data.pickValue(SIZES), value(data));
            }
            assertTrue(System.nanoTime() - started < MAX_NANOS_PER_INPUT, "one input ran for more than 2 s");
        }
        restoreFirmwareLayout(f, bars);
        assertEquals(0, f.transport.status(), "writing status 0 resets the device (virtio 1.2 §4.1.4.3)");
        f.canaries.assertCanariesIntact(); // whatever rings the input programmed, nothing outside guest memory was written
    }

    /** Firmware's BARs, memory decoding and bus mastering on, device reset: a known start for every input. */
    private static void restoreFirmwareLayout(TransportFixture f, long[] bars) {
        for (int bar : new int[] {VIRTIO_BAR, MSIX_BAR}) {
            f.configWrite(0x10 + 4 * bar, 4, (int) bars[bar]);
            f.configWrite(0x14 + 4 * bar, 4, (int) (bars[bar] >>> 32));
        }
        f.configWrite(0x04, 2, 0x6); // memory space + bus master
        f.mmio.write(bars[VIRTIO_BAR] + VirtioPciTransport.COMMON_OFFSET + CommonConfig.DEVICE_STATUS, 1, 0);
    }

    /** A BAR move as firmware or an OS does it: size probe (all ones) sometimes, then a new base inside the window. */
    private static void moveBar(TransportFixture f, int bar, FuzzedDataProvider data) {
        int low = 0x10 + 4 * bar;
        if (data.consumeBoolean()) {
            f.configWrite(low, 4, 0xFFFF_FFFF);
            f.configWrite(low + 4, 4, 0xFFFF_FFFF);
        }
        long base = data.consumeBoolean()
                ? TransportFixture.PCI_WINDOW + 0x10_0000L * data.consumeInt(0, 15)
                : data.consumeLong();
        f.configWrite(low, 4, (int) base);
        f.configWrite(low + 4, 4, (int) (base >>> 32));
    }

    /** Where the guest has put a BAR now (read back through config space, as a driver would). */
    private static long bar(TransportFixture f, int bar) {
        long low = f.configRead(0x10 + 4 * bar, 4) & 0xFFFF_FFF0L;
        long high = f.configRead(0x14 + 4 * bar, 4) & 0xFFFF_FFFFL;
        return (high << 32) | low;
    }

    private static int configOffset(FuzzedDataProvider data) {
        return switch (data.consumeInt(0, 3)) {
            case 0 -> data.consumeInt(0, 0x3F);       // the header
            case 1 -> data.consumeInt(0x40, 0xFF);    // the capability list (virtio caps, MSI-X)
            case 2 -> 0x04;                           // the command register
            default -> data.consumeInt(0, 0xFF);
        };
    }

    /** Offsets in the virtio BAR, mostly inside one of its four regions' registers, sometimes anywhere. */
    private static long virtioOffset(FuzzedDataProvider data) {
        return switch (data.consumeInt(0, 5)) {
            case 0 -> VirtioPciTransport.COMMON_OFFSET + data.consumeInt(0, 0x40);
            case 1 -> VirtioPciTransport.ISR_OFFSET + data.consumeInt(0, 4);
            case 2 -> VirtioPciTransport.DEVICE_OFFSET + data.consumeInt(0, 0x20);
            case 3 -> VirtioPciTransport.NOTIFY_OFFSET + data.consumeInt(0, 0x40);
            case 4 -> data.consumeInt(-8, VirtioPciTransport.VIRTIO_BAR_SIZE + 8);
            default -> data.consumeLong();
        };
    }

    /** Register values: small numbers (queue selects, sizes, status bits), bit masks, or anything. */
    private static long value(FuzzedDataProvider data) {
        return switch (data.consumeInt(0, 3)) {
            case 0 -> data.consumeInt(0, 0x100);
            case 1 -> 1L << data.consumeInt(0, 63);
            case 2 -> data.consumeInt();
            default -> data.consumeLong();
        };
    }
}
