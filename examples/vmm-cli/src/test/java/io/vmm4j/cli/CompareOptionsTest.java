package io.vmm4j.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code compare}'s --guest, --vcpu and the Linux guest's flags: refusals name the flag and the bad value, before anything starts. */
class CompareOptionsTest {
    private static CompareCommand parse(String... args) {
        CompareCommand c = new CompareCommand();
        new CommandLine(c).parseArgs(args);
        return c;
    }

    private static String refusal(String... args) {
        CompareCommand c = parse(args);
        return assertThrows(IllegalArgumentException.class, () -> c.checkLinuxFlags(c.guestKind().equals("linux"))).getMessage();
    }

    @Test
    void theGuestComesFromGuestOrVcpu() {
        assertEquals("java", parse().guestKind());
        assertEquals("kvm", parse("--vcpu", "kvm").guestKind());
        assertEquals("kvm", parse("--guest", "kvm").guestKind());
        assertEquals("linux", parse("--guest", "linux").guestKind());
        assertEquals("linux", parse("--guest", "linux", "--vcpu", "kvm").guestKind(), "Linux runs on KVM: no contradiction");
        assertEquals("java", parse("--guest", "java", "--vcpu", "java").guestKind());
    }

    @Test
    void badOrContradictoryGuestsAreRefusedByName() {
        assertEquals("--guest must be java, kvm, linux or dpdk, not 'windows'", refusal("--guest", "windows"));
        assertEquals("--vcpu must be java or kvm, not 'tcg'", refusal("--vcpu", "tcg"));
        assertEquals("--guest linux and --vcpu java contradict each other: give one of them (a Linux guest runs on KVM)",
                refusal("--guest", "linux", "--vcpu", "java"));
        assertEquals("--guest java and --vcpu kvm contradict each other: give one of them", refusal("--guest", "java", "--vcpu", "kvm"));
    }

    private static String dpdkRefusal(String... args) {
        CompareCommand c = parse(args);
        return assertThrows(IllegalArgumentException.class, () -> c.checkDpdkFlags(c.guestKind().equals("dpdk"))).getMessage();
    }

    @Test
    void theDpdkComparisonsFlagsAreCheckedAndRefusedElsewhere() {
        assertEquals("dpdk", parse("--guest", "dpdk").guestKind());
        assertEquals("--guest dpdk has no vCPU (DPDK testpmd's virtio_user is the front-end): drop --vcpu kvm",
                assertThrows(IllegalArgumentException.class, () -> parse("--guest", "dpdk", "--vcpu", "kvm").guestKind()).getMessage());
        assertEquals("--ports: 'memory' is not allowed; allowed: discard, tap", dpdkRefusal("--guest", "dpdk", "--ports", "discard,memory"));
        assertEquals("--poll-us -1 is out of range; allowed: 0 to 1000000 µs (0: event-driven rows only)",
                dpdkRefusal("--guest", "dpdk", "--poll-us", "-1"));
        assertTrue(dpdkRefusal("--guest", "dpdk", "--modes", "emulated").startsWith("--modes picks our data planes; with --guest dpdk"));
        assertTrue(dpdkRefusal("--guest", "dpdk", "--duration", "0.5").startsWith("--duration with --guest dpdk is whole seconds"));
        assertTrue(dpdkRefusal("--guest", "dpdk", "--chart", "x.png").endsWith("drop --chart x.png"));
        assertEquals("--ports tap is for --guest dpdk: add --guest dpdk or drop --ports", dpdkRefusal("--ports", "tap"));
        assertEquals("--poll-us 50 is for --guest dpdk: add --guest dpdk or drop --poll-us", dpdkRefusal("--vcpu", "kvm", "--poll-us", "50"));
    }

    @Test
    void linuxFlagsWithoutTheLinuxGuestAreRefused() {
        assertEquals("--kernel /boot/vmlinuz is for --guest linux: add --guest linux or drop --kernel", refusal("--kernel", "/boot/vmlinuz"));
        assertEquals("--initrd i.cpio is for --guest linux: add --guest linux or drop --initrd", refusal("--vcpu", "kvm", "--initrd", "i.cpio"));
        assertEquals("--console-dir /tmp is for --guest linux: add --guest linux or drop --console-dir", refusal("--console-dir", "/tmp"));
    }

    @Test
    void theLinuxGuestsFilesDurationAndChartAreChecked() throws Exception {
        Path dir = Files.createTempDirectory("vmm4j-compare-flags");
        Path kernel = Files.writeString(dir.resolve("bzImage"), "k");
        Path initrd = Files.writeString(dir.resolve("initrd"), "i");
        assertTrue(refusal("--guest", "linux", "--kernel", kernel.toString()).startsWith("--kernel " + kernel + " needs --initrd"));
        assertTrue(refusal("--guest", "linux", "--initrd", initrd.toString()).startsWith("--initrd " + initrd + " needs --kernel"));
        assertEquals("--kernel " + dir.resolve("nope") + ": no such file",
                refusal("--guest", "linux", "--kernel", dir.resolve("nope").toString(), "--initrd", initrd.toString()));
        assertEquals("--initrd " + dir + ": no such file", refusal("--guest", "linux", "--kernel", kernel.toString(), "--initrd", dir.toString()));
        assertEquals("--console-dir " + kernel + ": not a directory",
                refusal("--guest", "linux", "--kernel", kernel.toString(), "--initrd", initrd.toString(), "--console-dir", kernel.toString()));
        assertEquals("--duration with --guest linux is whole seconds in 1..60 (the guest's pktgen and count run whole seconds), not 0.5",
                refusal("--guest", "linux", "--duration", "0.5"));
        assertEquals("--duration with --guest linux is whole seconds in 1..60 (the guest's pktgen and count run whole seconds), not 61.0",
                refusal("--guest", "linux", "--duration", "61"));
        assertTrue(refusal("--guest", "linux", "--chart", "x.png").endsWith("drop --chart x.png"));
        CompareCommand fine = parse("--guest", "linux", "--kernel", kernel.toString(), "--initrd", initrd.toString(), "--duration", "3",
                "--console-dir", dir.toString());
        fine.checkLinuxFlags(true); // no refusal
    }
}
