package io.vmm4j.examples.linux;

import io.vmm4j.core.boot.BzImage;
import io.vmm4j.core.boot.KernelImageException;
import io.vmm4j.core.kvm.KvmException;
import io.vmm4j.core.kvm.VmExitCounts;
import io.vmm4j.core.x86.LinuxVm;

import io.vmm4j.tap.TapDevice;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.net.NetFeatures;

import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Boots a stock Linux bzImage on KVM with {@link LinuxVm} and runs it until the guest reboots:
 * the standalone harness for direct kernel boot (issue 12, phase 1).
 *
 * <pre>
 * java -cp CLASSPATH io.vmm4j.examples.linux.LinuxBoot --kernel vmlinuz [--initrd FILE]
 *      [--append "console=ttyS0 ..."] [--memory MiB] [--cpus N] [--timeout SECONDS]
 *      [--net] [--port memory|tap] [--tap NAME] [--host-ip CIDR] [--backend emulated|vhost-net]
 *      [--workload W[,W...]] [--param NAME=VALUE]... [--host-ping N] [--host-flood N] [--console-input TEXT]
 * </pre>
 *
 * {@code --net} adds our PCI host with a virtio-net device ({@link VirtioNetSlot}) on an in-memory
 * port; {@code --port tap} puts it on a tap with the host side at {@code --host-ip} (default
 * 10.0.2.2/24) instead, and {@code --backend vhost-net} hands its rings to the kernel. The guest
 * workloads of scripts/linux-guest/init go on the kernel command line as {@code vmm4j.workload=W}
 * and {@code vmm4j.NAME=VALUE}. Host actions wait for the guest's cue on the console:
 * {@code --host-ping N} pings the guest N times once it prints "serve: ready", {@code --host-flood N}
 * flood-pings it with N requests once it prints "count: ready", and {@code --console-input TEXT}
 * types TEXT and Enter into the UART once it prints "console: type a line". Their results are
 * printed as {@code vmm4j-host-result: {json}}.
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

    static final String SERVE_READY = "vmm4j-guest: serve: ready";
    static final String COUNT_READY = "vmm4j-guest: count: ready";
    static final String CONSOLE_PROMPT = "vmm4j-guest: console: type a line";
    /** The guest's address unless --param ip=... says otherwise (scripts/linux-guest/init's default). */
    static final String DEFAULT_GUEST_IP = "10.0.2.15/24";

    record Options(Path kernel, Path initrd, String append, int cpus, long memoryMiB, Duration timeout, boolean net,
                   VirtioNetSlot.Setup netSetup, String workload, Map<String, String> params, int hostPing, int hostFlood,
                   String consoleInput) {
        /** The kernel command line: --append, then the workload parameters for the guest's /init. */
        String commandLine() {
            StringBuilder b = new StringBuilder(append);
            if (workload != null) {
                b.append(" vmm4j.workload=").append(workload);
            }
            if (netSetup.port() == VirtioNetSlot.Port.TAP && !params.containsKey("host")) {
                b.append(" vmm4j.host=").append(address(netSetup.hostIp()));
            }
            params.forEach((k, v) -> b.append(" vmm4j.").append(k).append('=').append(v));
            return b.toString();
        }

        String guestAddress() {
            return address(params.getOrDefault("ip", DEFAULT_GUEST_IP));
        }

        private static String address(String cidr) {
            int slash = cidr.indexOf('/');
            return slash < 0 ? cidr : cidr.substring(0, slash);
        }
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
            log.println("usage: LinuxBoot --kernel BZIMAGE [--initrd FILE] [--append CMDLINE] [--memory MiB] [--cpus N] [--timeout SECONDS] "
                    + "[--net] [--port memory|tap] [--tap NAME] [--host-ip CIDR] [--backend emulated|vhost-net] [--workload W[,W...]] "
                    + "[--param NAME=VALUE]... [--host-ping N] [--host-flood N] [--console-input TEXT]");
            return 2;
        }
        ConsoleRecorder recorder = new ConsoleRecorder(console, 40, List.of(BANNER, PANIC));
        List<Thread> hostWork = new CopyOnWriteArrayList<>();
        PipedOutputStream typing = null;
        InputStream consoleIn = null;
        LinuxVm vm;
        try {
            if (o.consoleInput() != null) {
                PipedInputStream in = new PipedInputStream();
                typing = new PipedOutputStream(in);
                consoleIn = in;
            }
            BzImage kernel = BzImage.read(o.kernel());
            byte[] initrd = o.initrd() == null ? null : readInitrd(o.initrd());
            vm = LinuxVm.create(new LinuxVm.Config(kernel, initrd, o.commandLine(), o.cpus(), o.memoryMiB(), recorder, consoleIn, log));
        } catch (KernelImageException | KvmException | IllegalArgumentException | IOException e) {
            log.println("vmm4j: " + e.getMessage());
            return 2;
        }
        VirtioNetSlot net;
        try {
            net = o.net() ? new VirtioNetSlot(vm, o.netSetup(), log) : null;
        } catch (RuntimeException e) {
            vm.close();
            log.println("vmm4j: " + e.getMessage());
            return 2;
        }
        armHostActions(o, recorder, typing, hostWork, log);
        try (vm; net) {
            log.println("vmm4j: booting with \"" + o.commandLine() + "\", " + o.cpus() + " vCPU(s), " + o.memoryMiB() + " MiB");
            LinuxVm.Outcome out = vm.run(o.timeout());
            recorder.flush(); // a last console line without its newline
            awaitHostWork(hostWork);
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
                log.printf("vmm4j: virtio-net: final status %s, driver features 0x%x %s, notifies %d/%d, queue interrupts %d/%d%n",
                        DeviceStatus.describe(net.transport().status()), net.transport().driverFeatures(),
                        NetFeatures.names(net.transport().driverFeatures()), net.transport().notifyCount(0), net.transport().notifyCount(1),
                        net.transport().queueInterruptCount(0), net.transport().queueInterruptCount(1));
                log.println("vmm4j: data plane " + net.backend().name() + ": frames moved by " + net.dataPlaneReport());
                TapDevice tap = net.tap();
                if (tap != null) {
                    log.printf("vmm4j: tap %s offloads set from the driver's GUEST_* features (TUNSETOFFLOAD): %s%n", tap.name(),
                            TapDevice.describeOffloads(tap.offloads()));
                    HostTools.ethtoolFeatures(tap.name()).forEach(l -> log.println("vmm4j: host ethtool -k " + tap.name() + ": " + l));
                }
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

    private static void awaitHostWork(List<Thread> hostWork) {
        try {
            for (Thread t : hostWork) {
                t.join(30_000); // a host ping ends by its own deadline
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The host's side of the guest's workloads, each started by the guest's cue line on the console. */
    private static void armHostActions(Options o, ConsoleRecorder recorder, PipedOutputStream typing, List<Thread> hostWork, PrintStream log) {
        String guest = o.guestAddress();
        if (o.hostPing() > 0) {
            recorder.onceOnLine(SERVE_READY, line -> hostWork.add(Thread.ofPlatform().name("host-ping").start(() -> {
                log.println("vmm4j: the guest serves; the host pings " + guest + " " + o.hostPing() + " times");
                HostPing r = HostPing.run(guest, o.hostPing(), false, o.hostPing() + 20);
                log.println("vmm4j: host ping " + guest + ": " + r.summary());
                log.println("vmm4j-host-result: " + r.json());
            })));
        }
        if (o.hostFlood() > 0) {
            recorder.onceOnLine(COUNT_READY, line -> hostWork.add(Thread.ofPlatform().name("host-flood").start(() -> {
                log.println("vmm4j: the guest counts; the host flood-pings " + guest + " with " + o.hostFlood() + " requests");
                HostPing r = HostPing.run(guest, o.hostFlood(), true, 20);
                log.println("vmm4j: host flood " + guest + ": " + r.summary());
                log.println("vmm4j-host-result: " + r.json().replace("\"ping\"", "\"ping -f\""));
            })));
        }
        if (typing != null) {
            PipedOutputStream keys = typing;
            recorder.onceOnLine(CONSOLE_PROMPT, line -> hostWork.add(Thread.ofPlatform().name("console-typing").start(() -> {
                // Enter on a serial terminal is CR; the tty's ICRNL makes it the end of the line
                try (keys) {
                    keys.write((o.consoleInput() + "\r").getBytes(StandardCharsets.UTF_8));
                    log.println("vmm4j: typed \"" + o.consoleInput() + "\" and Enter into the UART");
                } catch (IOException e) {
                    log.println("vmm4j: typing into the console failed: " + e.getMessage());
                }
            })));
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
        VirtioNetSlot.Port port = VirtioNetSlot.Port.MEMORY;
        String tapName = "";
        String hostIp = VirtioNetSlot.DEFAULT_HOST_IP;
        VirtioNetSlot.Plane plane = VirtioNetSlot.Plane.EMULATED;
        String workload = null;
        Map<String, String> params = new LinkedHashMap<>();
        int hostPing = 0;
        int hostFlood = 0;
        String consoleInput = null;
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
                case "--port" -> port = switch (v) {
                    case "memory" -> VirtioNetSlot.Port.MEMORY;
                    case "tap" -> VirtioNetSlot.Port.TAP;
                    default -> throw new IllegalArgumentException("--port must be memory or tap, not '" + v + "'");
                };
                case "--tap" -> {
                    tapName = v;
                    port = VirtioNetSlot.Port.TAP;
                }
                case "--host-ip" -> hostIp = cidr(a, v);
                case "--backend" -> plane = VirtioNetSlot.Plane.parse(v);
                case "--workload" -> workload = word(a, v);
                case "--param" -> {
                    int eq = v.indexOf('=');
                    if (eq <= 0 || !v.substring(0, eq).matches("[a-z_]+")) {
                        throw new IllegalArgumentException("--param wants NAME=VALUE with a lower-case NAME (it becomes vmm4j.NAME on the "
                                + "kernel command line), not '" + v + "'");
                    }
                    params.put(v.substring(0, eq), word(a, v.substring(eq + 1)));
                }
                case "--host-ping" -> hostPing = number(a, v);
                case "--host-flood" -> hostFlood = number(a, v);
                case "--console-input" -> {
                    if (v.chars().anyMatch(c -> c < 0x20 || c == 0x7F)) {
                        throw new IllegalArgumentException("--console-input takes one line of printable text (Enter is added), not '"
                                + v.replaceAll("\\p{Cntrl}", "?") + "'");
                    }
                    consoleInput = v;
                }
                default -> throw new IllegalArgumentException("unknown option " + a);
            }
        }
        if (kernel == null) {
            throw new IllegalArgumentException("--kernel BZIMAGE is required");
        }
        if (port == VirtioNetSlot.Port.TAP || plane != VirtioNetSlot.Plane.EMULATED) {
            net = true;
        }
        VirtioNetSlot.Setup setup = new VirtioNetSlot.Setup(port, tapName, hostIp, plane);
        if ((hostPing > 0 || hostFlood > 0) && port != VirtioNetSlot.Port.TAP) {
            throw new IllegalArgumentException("--host-ping and --host-flood reach the guest through a tap: add --port tap");
        }
        return new Options(kernel, initrd, append, cpus, memory, timeout, net, setup, workload, Collections.unmodifiableMap(params), hostPing, hostFlood,
                consoleInput);
    }

    /** One word of the kernel command line: no blanks, quotes or control characters. */
    private static String word(String option, String value) {
        if (value.isEmpty() || !value.chars().allMatch(c -> c > 0x20 && c < 0x7F && c != '"')) {
            throw new IllegalArgumentException(option + " goes on the kernel command line as one word: no blanks, quotes or control "
                    + "characters, not '" + value + "'");
        }
        return value;
    }

    private static String cidr(String option, String value) {
        if (!value.matches("\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}")) {
            throw new IllegalArgumentException(option + " wants an IPv4 address with a prefix length, e.g. 10.0.2.2/24, not '" + value + "'");
        }
        return value;
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
