package io.vmm4j.virtio.driver.transport;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vmm4j.core.event.EventLoop;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.driver.VirtioNetDriver;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import org.junit.jupiter.api.AfterAll;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzz target: virtio-net's control queue (virtio 1.2 §5.1.6.5). Each input is a sequence of
 * control commands with guest-chosen class, command and payload (any length up to the driver's
 * buffer), well framed or not (see {@link #rawChain}), sent through the real transport and ring to
 * the device's control-queue handler.
 * Invariants: every command is answered within the driver's timeout with VIRTIO_NET_OK or
 * VIRTIO_NET_ERR (no hang, no lost chain); a well-framed command never puts the device into
 * DEVICE_NEEDS_RESET; the device state stays inside its limits (1..max active pairs, MAC filter
 * lists within the 64 entries each a table may carry); a valid command still works afterwards;
 * nothing is written outside guest memory (canary pages).
 */
class NetControlQueueFuzzTest {
    private static final byte[] MAC = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
    private static final int PAIRS = 2;
    private static final int MAX_COMMANDS = 16;

    private static EventLoop control;
    private static VirtioNet net;
    private static TransportFixture vm;
    private static VirtioNetDriver driver;

    private static void boot() {
        if (vm != null) {
            return;
        }
        control = new EventLoop("net-ctrl-fuzz");
        net = new VirtioNet(new NetConfig(MAC, 1500, PAIRS, 256), new RecordingNetBackend(-1L, PAIRS), control);
        vm = new TransportFixture(net, VirtioPciTransport.NotifyMode.IOEVENTFD, 2 + 2 * PAIRS);
        driver = new VirtioNetDriver(vm.driver, vm.memory, vm.allocator, vm.apic);
        driver.bringUp(new VirtioNetDriver.Options(net.offeredFeatures(), PAIRS, 2048, 8, 0x40));
    }

    @AfterAll
    static void shutDown() {
        if (vm != null) {
            vm.driver.reset();
            vm.close();
            control.close();
            vm = null;
        }
    }

    /**
     * A chain whose framing is wrong on purpose (header split or short, no ack byte, a longer or
     * split writable part, more than the device reads): it is still a valid chain, so the device
     * must use it, claim no more written bytes than the chain has writable (virtio 1.2 §2.7.8.2: the
     * device writes at least len bytes), and ack OK or ERR in the first writable byte if there is one.
     */
    private static void rawChain(FuzzedDataProvider data) {
        byte[] readable = data.consumeBytes(data.consumeInt(0, 2048));
        int readableSegments = data.consumeInt(0, 3);
        int writableLength = data.consumeInt(0, 3) == 0 ? data.consumeInt(0, 2048) : data.consumeInt(0, 2);
        int writableSegments = data.consumeInt(readableSegments == 0 ? 1 : 0, 3);
        DriverQueue.Used used = driver.controlChain(readable, readableSegments, writableLength, writableSegments);
        String chain = readable.length + " readable bytes in " + readableSegments + " segments, " + writableLength
                + " writable in " + writableSegments;
        assertNotNull(used, "the device never used a control chain of " + chain);
        assertTrue(used.length() >= 0 && used.length() <= writableLength,
                "used length " + used.length() + " for a chain of " + chain + " (§2.7.8.2)");
        if (writableLength >= 1 && writableSegments >= 1) {
            int ack = vm.memory.readByte(driver.controlWritable()) & 0xFF;
            assertTrue(ack == VirtioNet.CTRL_OK || ack == VirtioNet.CTRL_ERR, "ack " + ack + " for a chain of " + chain);
        }
    }

    @FuzzTest(maxDuration = "20s")
    void controlQueue(FuzzedDataProvider data) {
        boot();
        for (int i = 0; i < MAX_COMMANDS && data.remainingBytes() > 0; i++) {
            if (data.consumeInt(0, 3) == 0) {
                rawChain(data);
            } else {
                int cls = data.consumeBoolean() ? data.consumeInt(0, 6) : data.consumeInt(0, 255);
                int cmd = data.consumeBoolean() ? data.consumeInt(0, 2) : data.consumeInt(0, 255);
                byte[] payload = data.consumeBytes(data.consumeInt(0, 1000));
                int ack = driver.controlCommand(cls, cmd, payload);
                assertTrue(ack == VirtioNet.CTRL_OK || ack == VirtioNet.CTRL_ERR,
                        "class " + cls + " command " + cmd + " (" + payload.length + " bytes) answered " + ack + ", not OK/ERR");
            }
            assertEquals(0, vm.transport.status() & DeviceStatus.DEVICE_NEEDS_RESET,
                    "a well-framed control command set NEEDS_RESET: " + vm.transport.lastError());
            assertTrue(net.activePairs() >= 1 && net.activePairs() <= PAIRS, "active pairs " + net.activePairs());
            VirtioNet.RxFilter filter = net.rxFilter();
            assertTrue(filter.unicast().size() <= 64 && filter.multicast().size() <= 64, filter::toString);
        }
        // the queue still serves a valid command, and leaves the next input a known state
        assertEquals(VirtioNet.CTRL_OK, driver.setQueuePairs(1));
        assertEquals(VirtioNet.CTRL_OK, driver.setRxMode(VirtioNet.RX_PROMISC, false));
        vm.canaries.assertCanariesIntact(); // nothing written outside guest memory
    }
}
