package io.vmm4j.cli;

import io.vmm4j.cli.doctor.Capability;
import io.vmm4j.cli.doctor.HostProbe;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
    void stockKernelRowSaysPvmAndPointsToTheLabWithNestedKvm(@TempDir Path sys) throws Exception {
        Files.createDirectories(sys.resolve("kvm"));
        Files.createDirectories(sys.resolve("kvm_pvm"));
        Capability pvm = new HostProbe(sys).stockKernel(true);
        assertEquals(HostProbe.STOCK_KERNEL_ROW, pvm.name());
        assertTrue(!pvm.available(), "a PVM /dev/kvm works, but not for stock kernels");
        assertTrue(pvm.detail().startsWith("this KVM is PVM (module kvm_pvm loaded"), pvm.detail());
        assertTrue(pvm.howToGet().contains("--qemu-args \"-cpu qemu64,+svm,+npt\" --modules kvm_amd")
                && pvm.howToGet().contains("./vmm run --vcpu kvm --guest linux"), pvm.howToGet());
        assertTrue(DoctorCommand.render(List.of(pvm)).contains(HostProbe.STOCK_KERNEL_ROW + "  MISSING"));

        Files.delete(sys.resolve("kvm_pvm"));
        Files.createDirectories(sys.resolve("kvm_amd"));
        Capability svm = new HostProbe(sys).stockKernel(true);
        assertTrue(svm.available(), svm.detail());
        assertEquals("hardware KVM: kvm_amd (SVM) loaded", svm.detail());
        Capability none = new HostProbe(sys).stockKernel(false);
        assertTrue(!none.available() && none.howToGet().contains("lab VM"), none.howToGet());
    }

    @Test
    void stockKernelRowMatchesThisHost() {
        Capability row = find(new HostProbe().probe(), HostProbe.STOCK_KERNEL_ROW);
        if (Files.isDirectory(Path.of("/sys/module/kvm_pvm"))) {
            assertTrue(!row.available() && row.detail().contains("PVM"), row.detail());
        }
        assertTrue(row.available() || row.howToGet().contains("lab VM"), row.howToGet());
    }

    @Test
    void jsonKeepsItsShapeAndCarriesTheStockKernelRow() throws Exception {
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        var rows = mapper.readTree(mapper.writeValueAsString(new HostProbe().probe()));
        assertTrue(rows.isArray());
        boolean found = false;
        for (var row : rows) {
            assertEquals(List.of("name", "available", "detail", "enables", "howToGet"), iterable(row.fieldNames()), row.toString());
            found |= row.get("name").asText().equals(HostProbe.STOCK_KERNEL_ROW);
        }
        assertTrue(found, rows.toString());
    }

    private static List<String> iterable(java.util.Iterator<String> it) {
        List<String> l = new java.util.ArrayList<>();
        it.forEachRemaining(l::add);
        return l;
    }

    @Test
    void doctorExitsZeroAndUnknownCommandsFailWithUsage() {
        assertEquals(0, Main.execute("doctor", "--json"));
        assertEquals(2, Main.execute("no-such-command"));
    }

    @Test
    void openVswitchRowsSayWhatIsInstalledAndWhichDatapathWorks(@TempDir Path sys) {
        List<Capability> caps = new HostProbe(sys).probe();
        Capability ovs = find(caps, "Open vSwitch");
        assertEquals(HostRequirements.findCommand("ovs-vsctl") != null, ovs.available(), ovs.detail());
        if (ovs.available()) {
            assertTrue(ovs.detail().contains("no openvswitch kernel module: userspace datapath only (datapath_type=netdev)"), ovs.detail());
            assertTrue(ovs.detail().startsWith("ovs-vswitchd (Open vSwitch) "), ovs.detail());
        } else {
            assertTrue(ovs.howToGet().contains("apt-get install openvswitch-switch"), ovs.howToGet());
        }
        Capability dpdk = find(caps, "OVS-DPDK");
        assertEquals(Files.isExecutable(Path.of(HostProbe.OVS_DPDK_VSWITCHD)), dpdk.available(), dpdk.detail());
        assertTrue(dpdk.available() || dpdk.howToGet().contains("openvswitch-switch-dpdk"), dpdk.howToGet());
        find(caps, "2 MiB hugepages");
    }

    @Test
    void hugepagesRowNeedsFreePagesAndAMountedHugetlbfs() {
        String none = "HugePages_Total:       0\nHugePages_Free:        0\nHugepagesize:       2048 kB\n";
        String some = "HugePages_Total:     600\nHugePages_Free:      600\nHugepagesize:       2048 kB\n";
        String mounted = "proc /proc proc rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n";
        String gigantic = "hugetlbfs /mnt/huge1g hugetlbfs rw,relatime,pagesize=1024M 0 0\n";

        Capability missing = HostProbe.hugepages(none, mounted);
        assertTrue(!missing.available());
        assertEquals("0 reserved, 0 free (2 MiB); hugetlbfs at /dev/hugepages", missing.detail());
        assertTrue(missing.howToGet().contains("echo 600 > /proc/sys/vm/nr_hugepages"), missing.howToGet());

        Capability unmounted = HostProbe.hugepages(some, gigantic);
        assertTrue(!unmounted.available(), "a 1 GiB hugetlbfs is not where DPDK finds 2 MiB pages");
        assertEquals("600 reserved, 600 free (2 MiB); hugetlbfs not mounted", unmounted.detail());

        Capability ok = HostProbe.hugepages(some, mounted);
        assertTrue(ok.available(), ok.detail());
        assertTrue(DoctorCommand.render(List.of(ok)).contains("2 MiB hugepages  ok"), DoctorCommand.render(List.of(ok)));
    }
}
