package io.vmm4j.cli;

import io.vmm4j.cli.doctor.Capability;
import io.vmm4j.cli.doctor.HostProbe;
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
}
