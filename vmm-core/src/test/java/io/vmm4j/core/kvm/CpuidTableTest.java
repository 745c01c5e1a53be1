package io.vmm4j.core.kvm;

import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CpuidTableTest {
    private static int word(String s, int i) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        return (b[4 * i] & 0xFF) | (b[4 * i + 1] & 0xFF) << 8 | (b[4 * i + 2] & 0xFF) << 16 | (b[4 * i + 3] & 0xFF) << 24;
    }

    /** A table as an AMD or Intel host's KVM might report it (vendor in leaf 0: EBX, EDX, ECX). */
    private static CpuidTable table(String vendor) {
        int sig = KvmIoctls.CPUID_FLAG_SIGNIFCANT_INDEX;
        return new CpuidTable(List.of(
                new CpuidTable.Entry(0, 0, 0, 0xD, word(vendor, 0), word(vendor, 2), word(vendor, 1)),
                new CpuidTable.Entry(1, 0, 0, 0x600F12, 0xFF_FF_08_00 | 0x42, 0x0000_0001, 1 << 28 | 1),
                new CpuidTable.Entry(4, 0, sig, 0x121, 0, 0, 0),            // L1 data cache
                new CpuidTable.Entry(4, 1, sig, 0x163, 0, 0, 0),            // L3 unified
                new CpuidTable.Entry(4, 2, sig, 0, 0, 0, 0),                // no more caches
                new CpuidTable.Entry(0xB, 0, sig, 1, 2, 0x100, 7),
                new CpuidTable.Entry(0x8000_0008, 0, 0, 0x3030, 0, 0x7007, 0),
                new CpuidTable.Entry(0x8000_001E, 0, 0, 9, 0x0109, 0x0103, 0),
                new CpuidTable.Entry(0x4000_0001, 0, 0, 0x01FF_FB7F, 0, 0, 0)));
    }

    @Test
    void leafOneCarriesTheApicIdTheCountAndTheHypervisorBit() {
        CpuidTable t = table("AuthenticAMD").normalizedFor(2, 3, true);
        CpuidTable.Entry l1 = t.get(1, 0);
        assertEquals(2, l1.ebx >>> 24, "initial APIC id");
        assertEquals(4, (l1.ebx >>> 16) & 0xFF, "addressable ids: the power of two >= 3");
        assertEquals(8, (l1.ebx >>> 8) & 0xFF, "CLFLUSH 64 bytes");
        assertEquals(0x42, l1.ebx & 0xFF, "brand index kept");
        assertTrue((l1.ecx & (1 << 31)) != 0, "hypervisor bit");
        assertTrue((l1.ecx & (1 << 24)) != 0, "TSC deadline");
        assertTrue((l1.ecx & 1) != 0, "other feature bits kept");
        assertTrue((l1.edx & (1 << 28)) != 0, "HTT with more than one CPU");

        CpuidTable one = table("AuthenticAMD").normalizedFor(0, 1, false);
        assertEquals(0, one.get(1, 0).edx & (1 << 28), "no HTT for a single CPU");
        assertEquals(0, one.get(1, 0).ecx & (1 << 24), "no TSC deadline unless KVM has it");
        assertEquals(1, (one.get(1, 0).ebx >>> 16) & 0xFF);
    }

    @Test
    void extendedTopologyHasTheX2ApicIdInEverySubleaf() {
        CpuidTable t = table("GenuineIntel").normalizedFor(5, 6, false);
        CpuidTable.Entry smt = t.get(0xB, 0);
        CpuidTable.Entry core = t.get(0xB, 1);
        CpuidTable.Entry end = t.get(0xB, 2);
        assertEquals(List.of(0, 1, 0x100, 5), List.of(smt.eax, smt.ebx, smt.ecx, smt.edx), "SMT level: one thread per core");
        assertEquals(List.of(3, 6, 0x201, 5), List.of(core.eax, core.ebx, core.ecx, core.edx), "core level: 6 CPUs, 3 id bits");
        assertEquals(List.of(0, 0, 2, 5), List.of(end.eax, end.ebx, end.ecx, end.edx), "invalid level ends the list");
        // Intel leaf 4: cores per package - 1 in EAX[31:26]; the L3 is shared by all of them
        assertEquals(5, t.get(4, 0).eax >>> 26);
        assertEquals(0, (t.get(4, 0).eax >>> 14) & 0xFFF, "L1 per core");
        assertEquals(5, (t.get(4, 1).eax >>> 14) & 0xFFF, "L3 shared");
        assertEquals(0, t.get(4, 2).eax, "the terminating subleaf stays zero");
    }

    @Test
    void amdLeavesCountCoresAndCarryTheApicId() {
        CpuidTable t = table("AuthenticAMD").normalizedFor(1, 2, false);
        assertEquals(0x1001, t.get(0x8000_0008, 0).ecx, "1 APIC id bit for cores, NC = 1");
        assertEquals(1, t.get(0x8000_001E, 0).eax, "extended APIC id");
        assertEquals(0x0001, t.get(0x8000_001E, 0).ebx, "compute unit = APIC id, one thread per unit");
        assertEquals(0x0100, t.get(0x8000_001E, 0).ecx, "node 0");
        assertEquals(0x121, t.get(4, 0).eax, "Intel's leaf 4 untouched on AMD");
    }

    @Test
    void theKvmSignatureLeafIsAddedWithTheParavirtFeaturesKept() {
        CpuidTable supported = table("AuthenticAMD");
        assertNull(supported.get(0x4000_0000, 0));
        CpuidTable t = supported.normalizedFor(0, 1, false);
        assertEquals("KVMKVMKVM\0\0\0", t.hypervisorSignature());
        assertEquals(0x4000_0001, t.get(0x4000_0000, 0).eax, "highest hypervisor leaf");
        assertEquals(0x01FF_FB7F, t.get(0x4000_0001, 0).eax, "KVM's feature bits (kvm-clock) kept");
        assertEquals(0xFFFF_0842, supported.get(1, 0).ebx, "the supported table itself is not changed");
        assertNull(supported.get(0x4000_0000, 0));
    }

    @Test
    void roundTripsThroughKvmCpuid2() {
        CpuidTable t = table("GenuineIntel").normalizedFor(0, 2, false);
        try (Arena a = Arena.ofConfined()) {
            CpuidTable back = CpuidTable.read(t.toKvm(a));
            assertEquals(t.toString(), back.toString());
            assertEquals("GenuineIntel", back.vendor());
        }
    }

    @Test
    void refusesAnApicIdOutsideTheCpuCount() {
        assertThrows(IllegalArgumentException.class, () -> table("GenuineIntel").normalizedFor(2, 2, false));
    }

    @Test
    void thisHostsKvmAcceptsTheNormalisedTable() {
        HostRequirements.requireKvm();
        try (Kvm kvm = Kvm.open(); Arena a = Arena.ofConfined(); KvmVm vm = kvm.createVm()) {
            CpuidTable supported = CpuidTable.read(kvm.supportedCpuid(a));
            assertNotNull(supported.get(1, 0), supported.toString());
            CpuidTable t = supported.normalizedFor(0, 1, kvm.checkExtension(KvmIoctls.CAP_TSC_DEADLINE_TIMER) > 0);
            assertEquals("KVMKVMKVM\0\0\0", t.hypervisorSignature());
            vm.createIrqchip();
            try (KvmVcpu vcpu = vm.createVcpu(0, new io.vmm4j.core.bus.Bus("pio"), new io.vmm4j.core.bus.Bus("mmio"))) {
                vcpu.setCpuid(t.toKvm(a));
            }
        }
    }
}
