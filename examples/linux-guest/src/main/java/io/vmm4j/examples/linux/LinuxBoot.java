package io.vmm4j.examples.linux;

import io.vmm4j.core.boot.BzImage;
import io.vmm4j.core.boot.KernelImageException;
import io.vmm4j.core.kvm.KvmException;
import io.vmm4j.core.kvm.VmExitCounts;
import io.vmm4j.core.x86.LinuxVm;

import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Boots a stock Linux bzImage on KVM with {@link LinuxVm} and runs it until the guest reboots:
 * the standalone harness for direct kernel boot (issue 12, phase 1).
 *
 * <pre>
 * java -cp CLASSPATH io.vmm4j.examples.linux.LinuxBoot --kernel vmlinuz [--initrd FILE]
 *      [--append "console=ttyS0 ..."] [--memory MiB] [--cpus N] [--timeout SECONDS] [--net]
 * </pre>
 *
 * {@code --net} adds our PCI host with a virtio-net device ({@link VirtioNetSlot}).
 *
 * The guest console goes to stdout, the VMM's own lines (prefixed "vmm4j:") to stderr. Exit
 * status: 0 when the guest rebooted (reboot=k, i8042 reset) without a kernel panic; 1 when it
 * panicked; 2 on a usage or boot error; 3 when a vCPU failed; 4 on the time limit.
 */
public final class LinuxBoot {
    /** Console and reboot settings this VMM's devices need; the i8042 ones skip probing a keyboard and mouse that are not there. */
    public static final String DEFAULT_APPEND = "console=ttyS0 reboot=k panic=-1 i8042.noaux i8042.nomux i8042.dumbkbd";
    static final String BANNER = "Linux version ";
    static final String PANIC = "Kernel panic - not syncing";

    private LinuxBoot() {
    }

    record Options(Path kernel, Path initrd, String append, int cpus, long memoryMiB, Duration timeout, boolean net) {
    }

    public static void main(String[] args) {
        System.exit(run(args, new FileOutputStream(FileDescriptor.out), System.err));
    }

    /** Runs the harness; returns the exit status (see the class comment). */
    static int run(String[] args, OutputStream console, PrintStream log) {
        Options o;
        try {
            o = parse(args);
        } catch (IllegalArgumentException e) {
            log.println("vmm4j: " + e.getMessage());
            log.println("usage: LinuxBoot --kernel BZIMAGE [--initrd FILE] [--append CMDLINE] [--memory MiB] [--cpus N] [--timeout SECONDS] [--net]");
            return 2;
        }
        ConsoleRecorder recorder = new ConsoleRecorder(console, 40, List.of(BANNER, PANIC));
        LinuxVm vm;
        try {
            BzImage kernel = BzImage.read(o.kernel());
            byte[] initrd = o.initrd() == null ? null : readInitrd(o.initrd());
            vm = LinuxVm.create(new LinuxVm.Config(kernel, initrd, o.append(), o.cpus(), o.memoryMiB(), recorder, null, log));
        } catch (KernelImageException | KvmException | IllegalArgumentException e) {
            log.println("vmm4j: " + e.getMessage());
            return 2;
        }
        try (vm; VirtioNetSlot net = o.net() ? new VirtioNetSlot(vm, log) : null) {
            log.println("vmm4j: booting with \"" + o.append() + "\", " + o.cpus() + " vCPU(s), " + o.memoryMiB() + " MiB");
            LinuxVm.Outcome out = vm.run(o.timeout());
            VmExitCounts exits = out.totalExits();
            log.println(String.format("vmm4j: run ended: %s after %.1f s; exits %s; console %d bytes; unclaimed pio %d, mmio %d",
                    out.ending(), out.elapsed().toMillis() / 1000.0, exits, vm.uart().transmittedBytes(),
                    vm.pio().unclaimedAccesses(), vm.mmio().unclaimedAccesses()));
            String banner = recorder.firstLineWith(BANNER);
            log.println("vmm4j: banner: " + (banner == null ? "(none)" : banner.trim()));
            String panic = recorder.firstLineWith(PANIC);
            int status = switch (out.ending()) {
                case REBOOTED -> panic == null ? 0 : 1;
                case FAILED -> 3;
                case TIMED_OUT -> 4;
                case STOPPED -> 2;
            };
            if (out.ending() == LinuxVm.Ending.REBOOTED) {
                log.println(panic == null ? "vmm4j: the guest rebooted" : "vmm4j: the guest panicked (" + panic.trim() + ") and rebooted");
            }
            if (out.failure() != null) {
                log.println("vmm4j: " + out.failure().getMessage());
            }
            if (net != null) {
                log.printf("vmm4j: virtio-net: final status %s, driver features 0x%x, notifies %d/%d, queue interrupts %d/%d%n",
                        io.vmm4j.virtio.DeviceStatus.describe(net.transport().status()), net.transport().driverFeatures(),
                        net.transport().notifyCount(0), net.transport().notifyCount(1), net.transport().queueInterruptCount(0),
                        net.transport().queueInterruptCount(1));
            }
            if (status != 0) {
                log.println("vmm4j: last console lines:");
                for (String l : recorder.tail()) {
                    log.println("  | " + l);
                }
            }
            log.println("vmm4j: exit status " + status);
            return status;
        }
    }

    private static byte[] readInitrd(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (NoSuchFileException e) {
            throw new KernelImageException(p + ": no such initrd file");
        } catch (IOException e) {
            throw new KernelImageException(p + ": cannot read the initrd: " + e.getMessage(), e);
        }
    }

    static Options parse(String[] args) {
        Path kernel = null;
        Path initrd = null;
        String append = DEFAULT_APPEND;
        int cpus = 1;
        long memory = 256;
        Duration timeout = Duration.ofSeconds(120);
        boolean net = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--net")) {
                net = true;
                continue;
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(a + " wants a value");
            }
            String v = args[++i];
            switch (a) {
                case "--kernel" -> kernel = Path.of(v);
                case "--initrd" -> initrd = Path.of(v);
                case "--append" -> append = v;
                case "--cpus" -> cpus = number(a, v);
                case "--memory" -> memory = number(a, v);
                case "--timeout" -> timeout = Duration.ofSeconds(number(a, v));
                default -> throw new IllegalArgumentException("unknown option " + a);
            }
        }
        if (kernel == null) {
            throw new IllegalArgumentException("--kernel BZIMAGE is required");
        }
        return new Options(kernel, initrd, append, cpus, memory, timeout, net);
    }

    private static int number(String option, String value) {
        try {
            int n = Integer.parseInt(value);
            if (n <= 0) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " wants a positive whole number, not '" + value + "'");
        }
    }
}
