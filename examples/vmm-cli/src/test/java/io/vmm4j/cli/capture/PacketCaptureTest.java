package io.vmm4j.cli.capture;

import io.vmm4j.cli.testing.IdleNetBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Capture needs frames that pass through the VMM: with a vhost data plane it refuses and says where to capture instead. */
class PacketCaptureTest {
    @Test
    void vhostDataPlanesAreRefusedWithTheReason(@TempDir Path dir) {
        for (String backend : new String[] {"vhost-net", "vhost-user"}) {
            PacketCapture capture = new PacketCapture(() -> new IdleNetBackend(backend, 1));
            PacketCapture.CaptureException e = assertThrows(PacketCapture.CaptureException.class,
                    () -> capture.start(dir.resolve("x.pcap")));
            assertTrue(e.getMessage().contains("runs on " + backend) && e.getMessage().contains("never pass through the VMM")
                    && e.getMessage().contains("tshark -i") && e.getMessage().contains("--backend emulated"), e.getMessage());
            assertTrue(e.getMessage().contains(backend.equals("vhost-net") ? "in the kernel" : "backend process"), e.getMessage());
            assertFalse(capture.running());
        }
        PacketCapture idle = new PacketCapture(() -> new IdleNetBackend("vhost-net", 1));
        assertTrue(assertThrows(PacketCapture.CaptureException.class, idle::stop).getMessage().contains("no capture is running"));
    }
}
