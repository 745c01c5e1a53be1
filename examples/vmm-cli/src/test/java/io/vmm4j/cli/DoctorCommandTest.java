package io.vmm4j.cli;

import io.vmm4j.cli.doctor.Capability;
import io.vmm4j.cli.doctor.HostProbe;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DoctorCommandTest {
    private static Capability find(List<Capability> caps, String name) {
        return caps.stream().filter(c -> c.name().equals(name)).findFirst().orElseThrow(() -> new AssertionError("no row " + name));
    }

    @Test
    void probeCoversEveryCapabilityTheDesignNames() {
        List<Capability> caps = new HostProbe().probe();
        for (String name : List.of("JDK >= 25", "/dev/net/tun + CAP_NET_ADMIN", "/dev/kvm", "/dev/vhost-net",
                "qemu-system-x86_64", "dpdk-testpmd", "ip", "tshark")) {
            Capability c = find(caps, name);
            assertTrue(!c.enables().isBlank(), name + " says what it enables");
            assertTrue(c.available() || !c.howToGet().isBlank(), name + " says how to get it when missing");
        }
        assertTrue(find(caps, "JDK >= 25").available());
    }

    @Test
    void vhostNetRowTellsTheTruthAndPointsToTheLabVm() {
        Capability vhost = find(new HostProbe().probe(), "/dev/vhost-net");
        assertEquals(Files.exists(Path.of("/dev/vhost-net")), vhost.available());
        assertTrue(vhost.howToGet().contains("lab VM"), vhost.howToGet());
        String table = DoctorCommand.render(List.of(vhost));
        if (!vhost.available()) {
            assertTrue(table.contains("/dev/vhost-net  MISSING"), table);
            assertTrue(table.contains("How to get what is missing"), table);
        }
    }

    @Test
    void kvmRowMatchesTheDevice() {
        Capability kvm = find(new HostProbe().probe(), "/dev/kvm");
        if (Files.exists(Path.of("/dev/kvm")) && Files.isWritable(Path.of("/dev/kvm"))) {
            assertTrue(kvm.available(), kvm.detail());
            assertTrue(kvm.detail().contains("KVM API version 12"), kvm.detail());
        } else {
            assertTrue(!kvm.available());
        }
    }

    @Test
    void doctorExitsZeroAndUnknownCommandsFailWithUsage() {
        assertEquals(0, Main.execute("doctor", "--json"));
        assertEquals(2, Main.execute("no-such-command"));
    }
}
