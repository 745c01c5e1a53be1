package io.vmm4j.cli.vm;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.vhost.user.VhostUserNetBackend;
import io.vmm4j.vhost.user.VhostUserNetDaemon;
import io.vmm4j.virtio.queue.RingLayout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java guest's numbered UDP stream, echoed by the host, across two data-plane switches with no
 * guest reset: emulated, then our vhost-user daemon (on a thread of this JVM, serving the VMM's
 * own tap over a real socket), then emulated again. Every number reaches the host once and comes
 * back once, on split rings and on packed ones (whose positions and wrap counters cross both
 * hand-overs in SET/GET_VRING_BASE).
 */
class VhostUserSwitchTest {
    private static final int COUNT = 1500;
    private static final int PORT = 7777;

    @ParameterizedTest(name = "{0} rings")
    @EnumSource(RingLayout.class)
    void aNumberedUdpStreamCrossesEmulatedVhostUserEmulatedWithEveryNumberOnce(RingLayout ring) throws Exception {
        HostRequirements.requireTapsAndNamespaces("a tap for the VMM and the daemon it switches to");
        int subnet = 100 + ring.ordinal();
        String host = "10.77." + subnet + ".1";
        byte[] suffix = new byte[3];
        ThreadLocalRandom.current().nextBytes(suffix);
        VmOptions options = VmOptions.builder().dataPlane(DataPlane.of("emulated")).port(VmOptions.Port.TAP)
                .tap("vtsw" + HexFormat.of().formatHex(suffix)).hostIp(host + "/24").guestIp("10.77." + subnet + ".2")
                .pingTarget(host).count(0).ring(ring).build();
        Path dir = Files.createTempDirectory("vmm4j-vu-switch");
        Path socket = dir.resolve("vu.sock");
        ByteArrayOutputStream daemonLog = new ByteArrayOutputStream();
        try (ToyVm vm = new ToyVm(options, new PrintStream(OutputStream.nullOutputStream()));
             VhostNetLabCases.UdpEcho echo = new VhostNetLabCases.UdpEcho(host, PORT, COUNT);
             EventLoop watch = new EventLoop("vu-watch")) {
            vm.run();
            TapDevice tap = (TapDevice) vm.port();
            VhostUserNetDaemon daemon = new VhostUserNetDaemon(socket, tap, new VhostUserNetDaemon.Options(1, false, 2_000),
                    new PrintStream(daemonLog, true, StandardCharsets.UTF_8));
            Thread serving = Thread.ofPlatform().name("vhost-user-daemon").start(daemon::serve);
            try {
                List<String> path = new ArrayList<>();
                path.add(vm.net().backend().name());
                GuestTraffic.StreamResult r = vm.guest().traffic().udpStream(COUNT, PORT, 1000, seq -> {
                    if (seq == COUNT / 3) {
                        vm.net().switchBackend(new VhostUserNetBackend(socket, watch)).close();
                        path.add(vm.net().backend().name());
                    } else if (seq == 2 * COUNT / 3) {
                        vm.net().switchBackend(new EmulatedNetBackend(tap)).close();
                        path.add(vm.net().backend().name());
                    }
                });
                String why = "switches " + vm.net().switchLog() + ", guest missing " + r.missing() + " duplicates " + r.duplicates()
                        + ", host missing " + echo.missing() + " duplicates " + echo.duplicates() + "\ndaemon:\n" + daemonLog;
                assertEquals(List.of("emulated", "vhost-user", "emulated"), path, why);
                assertEquals(COUNT, r.sent(), why);
                assertEquals(0, echo.missing(), "the host got every datagram: " + why);
                assertEquals(0, echo.duplicates(), "and none twice: " + why);
                assertEquals(0, r.missing(), "the guest got every echo: " + why);
                assertEquals(0, r.duplicates(), "and none twice: " + why);
                assertTrue(daemonLog.toString(StandardCharsets.UTF_8).contains("queue pair 0 started (" + ring.label() + " rings"), why);
                assertTrue(vm.net().switchLog().size() == 2, why);
            } finally {
                daemon.close();
                serving.join(5_000);
            }
        } finally {
            Files.deleteIfExists(socket);
            Files.deleteIfExists(dir);
        }
    }
}
