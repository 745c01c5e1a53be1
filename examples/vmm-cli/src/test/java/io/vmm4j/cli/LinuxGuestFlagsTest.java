package io.vmm4j.cli;

import io.vmm4j.cli.vm.VmOptions;
import io.vmm4j.core.boot.TestKernels;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code ./vmm run --kernel}: the flags of a Linux guest reach the options, and each wrong one is
 * refused in one line naming it before anything (a tap, a VM) is created. No kernel boots here.
 */
class LinuxGuestFlagsTest {
    @TempDir
    static Path dir;

    /** A file with a valid-looking size but no bzImage setup header (as a vmlinux or an initrd would be). */
    private static Path notAKernel() {
        try {
            Path p = dir.resolve("vmlinux");
            if (!Files.exists(p)) {
                Files.write(p, new byte[64 * 1024]);
            }
            return p;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Stream<Arguments> badFlags() {
        String k = notAKernel().toString();
        return Stream.of(
                Arguments.of(List.of("--kernel", k), "--kernel: a Linux kernel boots on KVM only: add --vcpu kvm"),
                Arguments.of(List.of("--vcpu", "kvm", "--kernel", dir.resolve("missing").toString()), "--kernel: '" + dir.resolve("missing")
                        + "' is not a file: give a bzImage"),
                Arguments.of(List.of("--vcpu", "kvm", "--kernel", k), "--kernel: " + k + ": not a bzImage: no HdrS magic at 0x202"),
                Arguments.of(List.of("--initrd", k), "--initrd: goes with --kernel BZIMAGE"),
                Arguments.of(List.of("--append", "console=ttyS0"), "--append: goes with --kernel BZIMAGE"),
                Arguments.of(List.of("--cpus", "2"), "--cpus: goes with --kernel BZIMAGE"),
                Arguments.of(List.of("--vcpu", "kvm", "--guest", "windows"), "--guest: 'windows' is not a guest this VMM knows: linux"),
                Arguments.of(List.of("--guest", "linux"), "--guest: linux boots on KVM only: add --vcpu kvm"),
                Arguments.of(List.of("--vcpu", "kvm", "--guest", "linux", "--kernel", k), "--guest: linux picks the kernel and the initramfs "
                        + "itself: drop --kernel and --initrd"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badFlags")
    void aBadLinuxFlagIsRefusedInOneLineBeforeAnythingIsCreated(List<String> flags, String expected) {
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new Main());
        cli.setOut(new PrintWriter(new StringWriter(), true));
        cli.setErr(new PrintWriter(err, true));
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            cmd.getErr().println("vmm " + cmd.getCommandName() + ": " + e.getMessage());
            return 1;
        });
        List<String> args = new ArrayList<>(List.of("run"));
        args.addAll(flags);
        ByteArrayOutputStream bootLog = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        int exit;
        System.setOut(new PrintStream(bootLog, true, StandardCharsets.UTF_8));
        try {
            exit = cli.execute(args.toArray(String[]::new));
        } finally {
            System.setOut(stdout);
        }
        assertEquals("", bootLog.toString(StandardCharsets.UTF_8), "nothing was booted, no tap created");
        assertEquals(RunCommand.EXIT_REFUSED, exit, err.toString());
        assertTrue(err.toString().startsWith("vmm run: " + expected), "says '" + expected + "':\n" + err);
        assertEquals(1, err.toString().lines().count(), "one line:\n" + err);
    }

    @Test
    void ourGuestsPingFlagsAreRefusedWithAKernel() {
        RunCommand run = new RunCommand();
        Path kernel = fakeBzImage();
        new CommandLine(run).parseArgs("--vcpu", "kvm", "--kernel", kernel.toString(), "--count", "5");
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, run::resolve);
        assertTrue(e.getMessage().startsWith("--count: configures our own guests' pings; a Linux guest runs the workloads its command "
                + "line names"), e.getMessage());
    }

    @Test
    void theLinuxFlagsReachTheOptions() {
        Path kernel = fakeBzImage();
        Path initrd = notAKernel();
        RunCommand run = new RunCommand();
        new CommandLine(run).parseArgs("--vcpu", "kvm", "--kernel", kernel.toString(), "--initrd", initrd.toString(), "--append",
                "console=ttyS0 vmm4j.workload=ping", "--cpus", "2", "--memory", "256");
        VmOptions o = run.resolve();
        assertEquals(VmOptions.builder().vcpu(VmOptions.Vcpu.KVM).kernel(kernel).initrd(initrd).append("console=ttyS0 vmm4j.workload=ping")
                .cpus(2).memoryMiB(256).build(), o);
        assertTrue(o.linux());
        assertTrue(!VmOptions.builder().build().linux(), "no --kernel: one of our guests");
    }

    @Test
    void theConfigFileCarriesALinuxGuestAndFlagsOverrideIt() throws IOException {
        Path kernel = fakeBzImage();
        Path initrd = notAKernel();
        Path file = Files.writeString(dir.resolve("linux.json"), "{\"vcpu\": \"kvm\", \"memoryMiB\": 256, \"linux\": {\"kernel\": \"" + kernel
                + "\", \"initrd\": \"" + initrd + "\", \"append\": \"console=ttyS0 vmm4j.workload=ping\", \"cpus\": 2}}");
        RunCommand run = new RunCommand();
        new CommandLine(run).parseArgs("--config", file.toString(), "--cpus", "3");
        assertEquals(VmOptions.builder().vcpu(VmOptions.Vcpu.KVM).memoryMiB(256).kernel(kernel).initrd(initrd)
                .append("console=ttyS0 vmm4j.workload=ping").cpus(3).build(), run.resolve(), "the file's Linux guest, --cpus from the flag");
    }

    @Test
    void aLinuxFieldOrAPingFieldFromTheFileIsRefusedWithItsPath() throws IOException {
        Path bad = Files.writeString(dir.resolve("bad.json"), "{\"vcpu\": \"qemu\", \"linux\": {\"cpus\": 0}}");
        RunCommand run = new RunCommand();
        new CommandLine(run).parseArgs("--config", bad.toString());
        String message = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, run::resolve).getMessage();
        assertTrue(message.contains("$.vcpu: 'qemu' is not allowed") && message.contains("$.linux.cpus: 0 is out of range; allowed: 1 to 254"),
                message);

        Path pings = Files.writeString(dir.resolve("pings.json"), "{\"guest\": {\"ping\": {\"count\": 5}}}");
        RunCommand withKernel = new RunCommand();
        new CommandLine(withKernel).parseArgs("--config", pings.toString(), "--vcpu", "kvm", "--kernel", fakeBzImage().toString());
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, withKernel::resolve);
        assertTrue(e.getMessage().startsWith("--count ($.guest.ping.count in " + pings + "): configures our own guests' pings"),
                e.getMessage());
    }

    /** --guest linux: the lab's cached kernel and the initramfs scripts/linux-guest builds (skipped where they are not cached yet). */
    @Test
    void guestLinuxPicksTheLabsKernelAndTheProjectsInitramfs() throws IOException {
        Path kernel = TestKernels.labKernel();
        Path guests = kernel.getParent().getParent().getParent().resolve("guests").resolve(kernel.getParent().getFileName());
        boolean built;
        try (var files = Files.list(guests)) {
            built = files.anyMatch(f -> f.getFileName().toString().endsWith(".cpio.gz"));
        } catch (IOException e) {
            built = false;
        }
        Assumptions.assumeTrue(built, "the guest initramfs is not cached yet under " + guests + " (scripts/linux-guest/build-initramfs)");
        RunCommand run = new RunCommand();
        new CommandLine(run).parseArgs("--vcpu", "kvm", "--guest", "linux");
        VmOptions o = run.resolve();
        assertEquals(kernel, o.kernel());
        assertEquals(guests, o.initrd().getParent());
        assertEquals(VmOptions.DEFAULT_APPEND + " vmm4j.workload=ping", o.append(), "without --append /init pings the host");
    }

    /** A synthetic bzImage whose setup header passes every check (vmm-core's TestKernels); nothing boots it here. */
    private static Path fakeBzImage() {
        try {
            return Files.write(dir.resolve("bzImage"), TestKernels.bytes(TestKernels.valid()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
