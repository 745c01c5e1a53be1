package io.vmm4j.cli.doctor;

import io.vmm4j.core.kvm.KvmIoctls;
import io.vmm4j.core.linux.LibC;
import io.vmm4j.core.linux.LinuxException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/** Looks at this host and reports what vmm4j can use on it. */
public final class HostProbe {
    private static final int CAP_NET_ADMIN = 12;
    /** The row saying whether a stock Linux kernel boots on this host's /dev/kvm. */
    public static final String STOCK_KERNEL_ROW = "stock Linux kernel on /dev/kvm";
    /** How to boot one in the lab VM instead, with nested KVM (README, "A stock Linux guest"). */
    public static final String LAB_NESTED_KVM_COMMAND = "./vmm build; ./vmm lab chroot --qemu-args \"-cpu qemu64,+svm,+npt\" --modules kvm_amd "
            + "-- ./vmm run --vcpu kvm --guest linux --port tap";

    private final Path sysModule;

    public HostProbe() {
        this(Path.of("/sys/module"));
    }

    /** @param sysModule where the loaded kernel modules are listed (/sys/module; a test gives its own) */
    public HostProbe(Path sysModule) {
        this.sysModule = sysModule;
    }

    public List<Capability> probe() {
        List<Capability> out = new ArrayList<>();
        out.add(jdk());
        out.add(tun());
        Capability kvm = kvm();
        out.add(kvm);
        out.add(stockKernel(kvm.available()));
        out.add(vhostNet());
        out.add(command("qemu-system-x86_64", List.of("--version"),
                "the lab VM for kernel vhost-net, and QEMU as a real vhost-user frontend",
                "apt-get install qemu-system-x86"));
        out.add(command("dpdk-testpmd", List.of(),
                "a DPDK vhost-user peer for the vhost-user backend",
                "apt-get install dpdk"));
        out.add(openVswitch());
        out.add(ovsDpdk());
        out.add(hugepages(read(Path.of("/proc/meminfo")), read(Path.of("/proc/mounts"))));
        out.add(command("ip", List.of("-V"),
                "network namespaces, bridges, veth and tap set-up in tests",
                "apt-get install iproute2"));
        out.add(command("tshark", List.of("--version"),
                "decoding pcap captures in tests",
                "apt-get install tshark"));
        out.add(command("ethtool", List.of("--version"),
                "reading a tap's offloads back (ethtool -k)",
                "apt-get install ethtool"));
        out.add(command("gcc", List.of("--version"),
                "checking our ioctl constants against /usr/include/linux, and building the KVM test guest",
                "apt-get install gcc"));
        out.add(command("socat", List.of("-V"),
                "driving the control socket with a generic client",
                "apt-get install socat"));
        return out;
    }

    private Capability jdk() {
        int feature = Runtime.version().feature();
        return new Capability("JDK >= 25", feature >= 25,
                "Java " + Runtime.version() + " at " + System.getProperty("java.home"),
                "the FFM API every native call of vmm4j goes through",
                "install a JDK 25 (e.g. Temurin 25 under /usr/lib/jvm) or set JAVA_HOME to one");
    }

    private Capability tun() {
        String enables = "TAP devices: the guest NIC reaches the host kernel (./vmm run over a tap, bridges)";
        boolean netAdmin = hasEffectiveCapability(CAP_NET_ADMIN);
        Optional<String> openError = tryOpen("/dev/net/tun");
        if (openError.isEmpty() && netAdmin) {
            return new Capability("/dev/net/tun + CAP_NET_ADMIN", true, "present, CAP_NET_ADMIN held", enables, "");
        }
        String detail = openError.map(e -> "/dev/net/tun: " + e).orElse("/dev/net/tun opens")
                + (netAdmin ? "" : "; CAP_NET_ADMIN not held");
        return new Capability("/dev/net/tun + CAP_NET_ADMIN", false, detail, enables,
                "run as root (or grant CAP_NET_ADMIN); load the tun module (modprobe tun). Without it ./vmm run uses the in-memory port");
    }

    private Capability kvm() {
        String enables = "running our freestanding x86-64 guest with real ioeventfd and irqfd (./vmm run --vcpu kvm)";
        Optional<String> err = Optional.empty();
        String detail;
        try {
            int fd = LibC.open("/dev/kvm", LibC.O_RDWR | LibC.O_CLOEXEC);
            try {
                int version = LibC.ioctl(fd, KvmIoctls.GET_API_VERSION, 0L, "KVM_GET_API_VERSION");
                detail = "KVM API version " + version + (io.vmm4j.guest.KvmGuestImage.built()
                        ? "; the C guest image is built" : "; the C guest image is NOT built (this build had no gcc)");
                if (version != KvmIoctls.API_VERSION) {
                    err = Optional.of("unexpected KVM API version " + version);
                }
            } finally {
                LibC.closeQuietly(fd);
            }
        } catch (LinuxException e) {
            detail = e.getMessage();
            err = Optional.of(detail);
        }
        return new Capability("/dev/kvm", err.isEmpty(), detail, enables,
                "enable virtualization (VT-x/AMD-V or nested KVM) and load kvm_intel/kvm_amd; the Java test frontend works without it");
    }

    /**
     * Whether a stock (non-PVM) Linux kernel can boot on this host's KVM. PVM (the kvm_pvm module,
     * a paravirtual KVM for hosts without hardware virtualization) runs only guest kernels built
     * for PVM: a stock kernel hangs in early boot (QEMU -accel kvm stops after "Probing EDD"). The
     * hardware flavours are kvm_intel (VMX) and kvm_amd (SVM).
     */
    public Capability stockKernel(boolean kvmUsable) {
        String enables = "booting a stock Linux bzImage as the VMM's guest (./vmm run --vcpu kvm --kernel, or --guest linux)";
        String lab = "boot it in the lab VM, whose nested KVM (kvm_amd on a +svm,+npt CPU) runs stock kernels: " + LAB_NESTED_KVM_COMMAND
                + " (README, section \"A stock Linux guest\")";
        if (Files.isDirectory(sysModule.resolve("kvm_pvm"))) {
            return new Capability(STOCK_KERNEL_ROW, false, "this KVM is PVM (module kvm_pvm loaded, " + sysModule.resolve("kvm_pvm")
                    + "): it runs only PVM-built guest kernels, a stock kernel hangs in early boot; our own C guest runs", enables, lab);
        }
        if (!kvmUsable) {
            return new Capability(STOCK_KERNEL_ROW, false, "no usable /dev/kvm", enables,
                    "load kvm_intel or kvm_amd on a host with VT-x/AMD-V, or " + lab);
        }
        String flavour = Files.isDirectory(sysModule.resolve("kvm_intel")) ? "kvm_intel (VMX)"
                : Files.isDirectory(sysModule.resolve("kvm_amd")) ? "kvm_amd (SVM)" : null;
        if (flavour == null) {
            return new Capability(STOCK_KERNEL_ROW, false, "/dev/kvm works but neither kvm_intel nor kvm_amd is loaded, so what "
                    + "backs it is unknown; a stock kernel may not boot", enables, "try ./vmm run --vcpu kvm --guest linux here; if it hangs, " + lab);
        }
        return new Capability(STOCK_KERNEL_ROW, true, "hardware KVM: " + flavour + " loaded", enables, "");
    }

    private Capability vhostNet() {
        String enables = "the kernel vhost-net data plane (--backend vhost-net): the article's \"after\"";
        Optional<String> err = tryOpen("/dev/vhost-net");
        return new Capability("/dev/vhost-net", err.isEmpty(), err.map(e -> "missing: " + e).orElse("present"), enables,
                "modprobe vhost_net; if this host kernel lacks VHOST_NET, the vhost-net cases run in the lab VM "
                        + "(QEMU TCG + a Debian kernel that has vhost_net; README, section \"Kernel vhost-net lab\")");
    }

    /** The DPDK build of ovs-vswitchd that Debian's openvswitch-switch-dpdk installs (an alternative for /usr/sbin/ovs-vswitchd). */
    public static final String OVS_DPDK_VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";
    /** OVS-DPDK's dpdk-socket-mem=512 takes 256 pages of 2 MiB. */
    static final long DPDK_PAGES = 256;

    /**
     * Open vSwitch: its tools, and which datapath it can use here. Without the openvswitch kernel
     * module only the userspace datapath works (bridges with datapath_type=netdev).
     */
    Capability openVswitch() {
        String enables = "--bridge ovs:BR (a tap as an Open vSwitch port), scripts/vxlan-hosts --switch ovs, OVS-DPDK";
        String how = "apt-get install openvswitch-switch (tests run their own ovsdb-server and ovs-vswitchd from a private directory)";
        Optional<Path> vsctl = onPath("ovs-vsctl");
        Optional<Path> vswitchd = onPath("ovs-vswitchd").or(() -> existing("/usr/sbin/ovs-vswitchd"));
        Optional<Path> dbServer = onPath("ovsdb-server").or(() -> existing("/usr/sbin/ovsdb-server"));
        if (vsctl.isEmpty() || vswitchd.isEmpty() || dbServer.isEmpty()) {
            return new Capability("Open vSwitch", false, "missing:" + (vsctl.isEmpty() ? " ovs-vsctl" : "")
                    + (vswitchd.isEmpty() ? " ovs-vswitchd" : "") + (dbServer.isEmpty() ? " ovsdb-server" : ""), enables, how);
        }
        String version = firstLine(vswitchd.get(), List.of("--version")).orElse(vswitchd.get().toString());
        String datapath = Files.isDirectory(sysModule.resolve("openvswitch"))
                ? "kernel module openvswitch loaded: system and userspace (netdev) datapaths"
                : "no openvswitch kernel module: userspace datapath only (datapath_type=netdev)";
        String system = Files.exists(Path.of("/var/run/openvswitch/db.sock")) ? "; a system OVS runs (/var/run/openvswitch/db.sock)" : "";
        return new Capability("Open vSwitch", true, version + "; " + datapath + system, enables, "");
    }

    /** OVS built with DPDK (vhost-user ports: dpdkvhostuserclient, dpdkvhostuser). */
    Capability ovsDpdk() {
        String enables = "OVS-DPDK vhost-user ports for ./vmm run --backend vhost-user (--socket-listen with dpdkvhostuserclient)";
        Path dpdk = Path.of(OVS_DPDK_VSWITCHD);
        if (!Files.isExecutable(dpdk)) {
            return new Capability("OVS-DPDK", false, OVS_DPDK_VSWITCHD + " not installed", enables,
                    "apt-get install openvswitch-switch-dpdk; it needs 2 MiB hugepages (see the hugepages row)");
        }
        String version = firstLine(dpdk, List.of("--version")).orElse(dpdk.toString());
        String selected = "";
        try {
            selected = Path.of("/usr/sbin/ovs-vswitchd").toRealPath().equals(dpdk.toRealPath())
                    ? "; selected as ovs-vswitchd" : "; ovs-vswitchd is the non-DPDK build (update-alternatives --set ovs-vswitchd "
                    + OVS_DPDK_VSWITCHD + " selects it, or run it directly)";
        } catch (IOException e) {
            // no /usr/sbin/ovs-vswitchd: the DPDK binary is run directly
        }
        return new Capability("OVS-DPDK", true, version + " (" + dpdk + ")" + selected, enables, "");
    }

    /**
     * 2 MiB hugepages for DPDK: reserved and free (/proc/meminfo) and a hugetlbfs mounted for that
     * size (/proc/mounts), which DPDK's EAL looks for even when OVS runs it with --in-memory.
     */
    public static Capability hugepages(String meminfo, String mounts) {
        String enables = "OVS-DPDK (dpdk-socket-mem=512: " + DPDK_PAGES + " pages) and dpdk-testpmd with hugepages";
        String how = "echo 600 > /proc/sys/vm/nr_hugepages; mount -t hugetlbfs -o pagesize=2M none /dev/hugepages "
                + "(the OVS-DPDK test reserves its own and restores the count)";
        long total = meminfoValue(meminfo, "HugePages_Total");
        long free = meminfoValue(meminfo, "HugePages_Free");
        long sizeKb = meminfoValue(meminfo, "Hugepagesize");
        List<String> mountPoints = mounts.lines().map(l -> l.split(" ")).filter(f -> f.length > 3 && f[2].equals("hugetlbfs"))
                .filter(f -> !f[3].contains("pagesize=") || f[3].contains("pagesize=2M")).map(f -> f[1]).toList();
        String detail = total + " reserved, " + free + " free" + (sizeKb == 2048 ? " (2 MiB)" : " (default size " + sizeKb + " kB)")
                + "; hugetlbfs " + (mountPoints.isEmpty() ? "not mounted" : "at " + String.join(", ", mountPoints));
        boolean ok = sizeKb == 2048 && free >= DPDK_PAGES && !mountPoints.isEmpty();
        return new Capability("2 MiB hugepages", ok, detail, enables, how);
    }

    private static long meminfoValue(String meminfo, String key) {
        return meminfo.lines().filter(l -> l.startsWith(key + ":")).map(l -> l.substring(key.length() + 1).strip().split("\\s+")[0])
                .mapToLong(Long::parseLong).findFirst().orElse(0);
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return "";
        }
    }

    private static Optional<Path> existing(String path) {
        Path p = Path.of(path);
        return Files.isExecutable(p) ? Optional.of(p) : Optional.empty();
    }

    private static Optional<String> tryOpen(String path) {
        try {
            LibC.closeQuietly(LibC.open(path, LibC.O_RDWR | LibC.O_CLOEXEC));
            return Optional.empty();
        } catch (LinuxException e) {
            return Optional.of(e.errnoName());
        }
    }

    /** Reads the effective capability set from /proc/self/status. */
    public static boolean hasEffectiveCapability(int capability) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("CapEff:")) {
                    long caps = Long.parseUnsignedLong(line.substring(7).trim(), 16);
                    return (caps & (1L << capability)) != 0;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return false;
        }
        return false;
    }

    private Capability command(String name, List<String> versionArgs, String enables, String howToGet) {
        Optional<Path> path = onPath(name);
        if (path.isEmpty()) {
            return new Capability(name, false, "not on PATH", enables, howToGet);
        }
        String detail = path.get().toString();
        if (!versionArgs.isEmpty()) {
            detail = firstLine(path.get(), versionArgs).map(v -> v + " (" + path.get() + ")").orElse(detail);
        }
        return new Capability(name, true, detail, enables, "");
    }

    public static Optional<Path> onPath(String name) {
        String pathVar = System.getenv().getOrDefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        for (String dir : pathVar.split(":")) {
            if (dir.isEmpty()) {
                continue;
            }
            Path candidate = Path.of(dir, name);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }

    private static Optional<String> firstLine(Path exe, List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(exe.toString());
        cmd.addAll(args);
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return Optional.empty();
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            return out.lines().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("socat by")).findFirst();
        } catch (IOException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }
}
