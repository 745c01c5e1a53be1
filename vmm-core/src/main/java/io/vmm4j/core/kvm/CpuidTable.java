package io.vmm4j.core.kvm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The CPUID leaves a vCPU presents, as KVM_GET_SUPPORTED_CPUID returns them and KVM_SET_CPUID2
 * takes them ({@code struct kvm_cpuid2}, api.rst §4.46), and the per-vCPU normalisation a VMM
 * must do before a guest OS reads them ({@link #normalizedFor}): the APIC id and topology, the
 * hypervisor bit and the KVM paravirtual signature leaf (Firecracker's cpuid/normalize.rs and
 * Cloud Hypervisor's cpu.rs do the same; bit meanings from the Intel SDM Vol. 2A CPUID and the
 * AMD APM Vol. 3 Appendix E).
 */
public final class CpuidTable {
    /** Where the hypervisor leaves start (arch/x86/include/uapi/asm/kvm_para.h KVM_CPUID_SIGNATURE). */
    public static final int KVM_SIGNATURE_LEAF = 0x4000_0000;
    /** KVM_CPUID_FEATURES: the paravirt features (kvm-clock is bit 3, KVM_FEATURE_CLOCKSOURCE2). */
    public static final int KVM_FEATURES_LEAF = 0x4000_0001;
    /** "KVMKVMKVM\0\0\0" in EBX, ECX, EDX (Documentation/virt/kvm/x86/cpuid.rst). */
    public static final String KVM_SIGNATURE = "KVMKVMKVM\0\0\0";

    private static final VarHandle FUNCTION = handle("function");
    private static final VarHandle INDEX = handle("index");
    private static final VarHandle FLAGS = handle("flags");
    private static final VarHandle EAX = handle("eax");
    private static final VarHandle EBX = handle("ebx");
    private static final VarHandle ECX = handle("ecx");
    private static final VarHandle EDX = handle("edx");
    private static final VarHandle NENT = KvmLayouts.CPUID2.varHandle(MemoryLayout.PathElement.groupElement("nent"));

    // CPUID.01H bits (SDM Vol. 2A Table 3-10/3-11)
    static final int LEAF1_ECX_TSC_DEADLINE = 1 << 24;
    static final int LEAF1_ECX_HYPERVISOR = 1 << 31;
    static final int LEAF1_EDX_HTT = 1 << 28;
    /** CLFLUSH line size in 8-byte units: 64-byte lines. */
    static final int CLFLUSH_LINE_8 = 8;
    // CPUID.0BH level types (SDM Vol. 2A, leaf 0BH ECX[15:8])
    static final int LEVEL_SMT = 1;
    static final int LEVEL_CORE = 2;

    /** One leaf (or subleaf when {@code flags} has KVM_CPUID_FLAG_SIGNIFCANT_INDEX). */
    public static final class Entry {
        public final int function;
        public final int index;
        public int flags;
        public int eax;
        public int ebx;
        public int ecx;
        public int edx;

        public Entry(int function, int index, int flags, int eax, int ebx, int ecx, int edx) {
            this.function = function;
            this.index = index;
            this.flags = flags;
            this.eax = eax;
            this.ebx = ebx;
            this.ecx = ecx;
            this.edx = edx;
        }

        Entry copy() {
            return new Entry(function, index, flags, eax, ebx, ecx, edx);
        }

        @Override
        public String toString() {
            return String.format("0x%x.%d: eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x", function, index, eax, ebx, ecx, edx);
        }
    }

    private final List<Entry> entries;

    public CpuidTable(List<Entry> entries) {
        this.entries = new ArrayList<>(entries);
    }

    private static VarHandle handle(String field) {
        return KvmLayouts.CPUID_ENTRY2.varHandle(MemoryLayout.PathElement.groupElement(field));
    }

    /** Reads a {@code struct kvm_cpuid2} (e.g. {@link Kvm#supportedCpuid}). */
    public static CpuidTable read(MemorySegment cpuid2) {
        int n = (int) NENT.get(cpuid2, 0L);
        List<Entry> list = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            long at = KvmLayouts.CPUID2.byteSize() + i * KvmLayouts.CPUID_ENTRY2.byteSize();
            list.add(new Entry((int) FUNCTION.get(cpuid2, at), (int) INDEX.get(cpuid2, at), (int) FLAGS.get(cpuid2, at),
                    (int) EAX.get(cpuid2, at), (int) EBX.get(cpuid2, at), (int) ECX.get(cpuid2, at), (int) EDX.get(cpuid2, at)));
        }
        return new CpuidTable(list);
    }

    /** The table as a {@code struct kvm_cpuid2} for KVM_SET_CPUID2. */
    public MemorySegment toKvm(Arena arena) {
        MemorySegment s = arena.allocate(KvmLayouts.CPUID2.byteSize() + entries.size() * KvmLayouts.CPUID_ENTRY2.byteSize(), 8);
        NENT.set(s, 0L, entries.size());
        for (int i = 0; i < entries.size(); i++) {
            Entry e = entries.get(i);
            long at = KvmLayouts.CPUID2.byteSize() + i * KvmLayouts.CPUID_ENTRY2.byteSize();
            FUNCTION.set(s, at, e.function);
            INDEX.set(s, at, e.index);
            FLAGS.set(s, at, e.flags);
            EAX.set(s, at, e.eax);
            EBX.set(s, at, e.ebx);
            ECX.set(s, at, e.ecx);
            EDX.set(s, at, e.edx);
        }
        return s;
    }

    public List<Entry> entries() {
        return List.copyOf(entries);
    }

    /** The entry for {@code function} and subleaf {@code index} (index ignored for leaves without subleaves), or null. */
    public Entry get(int function, int index) {
        for (Entry e : entries) {
            if (e.function == function && ((e.flags & KvmIoctls.CPUID_FLAG_SIGNIFCANT_INDEX) == 0 || e.index == index)) {
                return e;
            }
        }
        return null;
    }

    /** "GenuineIntel", "AuthenticAMD", ...: leaf 0 EBX, EDX, ECX. */
    public String vendor() {
        Entry e = get(0, 0);
        return e == null ? "" : chars(e.ebx, e.edx, e.ecx);
    }

    /** The hypervisor signature in leaf 0x40000000 EBX, ECX, EDX, or "" without that leaf. */
    public String hypervisorSignature() {
        Entry e = get(KVM_SIGNATURE_LEAF, 0);
        return e == null ? "" : chars(e.ebx, e.ecx, e.edx);
    }

    private static String chars(int... words) {
        byte[] b = new byte[4 * words.length];
        for (int i = 0; i < words.length; i++) {
            for (int j = 0; j < 4; j++) {
                b[4 * i + j] = (byte) (words[i] >>> (8 * j));
            }
        }
        return new String(b, StandardCharsets.US_ASCII);
    }

    private static int word(String s, int i) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        return (b[4 * i] & 0xFF) | (b[4 * i + 1] & 0xFF) << 8 | (b[4 * i + 2] & 0xFF) << 16 | (b[4 * i + 3] & 0xFF) << 24;
    }

    /**
     * A copy for the vCPU with {@code apicId} among {@code cpuCount} single-threaded cores of one
     * package: leaf 1 (APIC id, logical count, CLFLUSH size, HTT, the hypervisor bit, TSC-deadline
     * when KVM can emulate it), leaves 0xB/0x1F (x2APIC id and the SMT/core levels), Intel leaf 4
     * (cores per package), AMD leaves 0x80000008 and 0x8000001E, and the KVM signature leaf with
     * the paravirtual features KVM reported (so the guest finds kvm-clock).
     */
    public CpuidTable normalizedFor(int apicId, int cpuCount, boolean tscDeadline) {
        if (cpuCount < 1 || cpuCount > 255 || apicId < 0 || apicId >= cpuCount) {
            throw new IllegalArgumentException("APIC id " + apicId + " of " + cpuCount + " CPUs is out of range (1-255 CPUs)");
        }
        List<Entry> out = new ArrayList<>();
        for (Entry e : entries) {
            out.add(e.copy());
        }
        CpuidTable t = new CpuidTable(out);
        int coreBits = 32 - Integer.numberOfLeadingZeros(cpuCount - 1); // ceil(log2(cpuCount))
        boolean intel = "GenuineIntel".equals(vendor());
        boolean amd = "AuthenticAMD".equals(vendor()) || "HygonGenuine".equals(vendor());

        Entry leaf1 = t.get(1, 0);
        if (leaf1 == null) {
            throw new KvmException("KVM_GET_SUPPORTED_CPUID has no leaf 1 (feature information); this KVM cannot run an x86 guest OS");
        }
        // EBX[31:24] initial APIC id, [23:16] addressable logical processors, [15:8] CLFLUSH line size / 8
        leaf1.ebx = (apicId << 24) | Math.min(1 << coreBits, 0xFF) << 16 | (CLFLUSH_LINE_8 << 8) | (leaf1.ebx & 0xFF);
        leaf1.ecx |= LEAF1_ECX_HYPERVISOR;
        if (tscDeadline) {
            leaf1.ecx |= LEAF1_ECX_TSC_DEADLINE;
        }
        leaf1.edx = cpuCount > 1 ? leaf1.edx | LEAF1_EDX_HTT : leaf1.edx & ~LEAF1_EDX_HTT;

        for (int topologyLeaf : new int[] {0xB, 0x1F}) {
            if (t.has(topologyLeaf)) {
                t.setTopology(topologyLeaf, apicId, cpuCount, coreBits);
            }
        }
        if (intel) {
            for (Entry e : t.entries) {
                if (e.function == 4 && (e.eax & 0x1F) != 0) { // a cache descriptor (type != 0)
                    int level = (e.eax >>> 5) & 0x7;
                    int sharing = level >= 3 ? cpuCount - 1 : 0;  // the L3 is shared by the package, L1/L2 per core
                    e.eax = (e.eax & 0x3FFF) | (sharing << 14) | ((cpuCount - 1) << 26);
                }
            }
        }
        if (amd) {
            Entry size = t.get(0x8000_0008, 0);
            if (size != null) {
                // ECX[15:12] APIC id bits for cores, [7:0] number of cores - 1 (APM Vol. 3 E.4.7)
                size.ecx = (size.ecx & ~0xF0FF) | (coreBits << 12) | (cpuCount - 1);
            }
            Entry ext = t.get(0x8000_001E, 0);
            if (ext != null) {
                ext.eax = apicId; // extended APIC id
                ext.ebx = (ext.ebx & ~0xFFFF) | apicId; // compute unit id; one thread per unit
                ext.ecx &= ~0xFF; // node 0
            }
        }

        Entry signature = t.get(KVM_SIGNATURE_LEAF, 0);
        if (signature == null) {
            signature = new Entry(KVM_SIGNATURE_LEAF, 0, 0, 0, 0, 0, 0);
            t.entries.add(signature);
        }
        signature.ebx = word(KVM_SIGNATURE, 0);
        signature.ecx = word(KVM_SIGNATURE, 1);
        signature.edx = word(KVM_SIGNATURE, 2);
        if (Integer.compareUnsigned(signature.eax, KVM_FEATURES_LEAF) < 0) {
            signature.eax = KVM_FEATURES_LEAF; // the highest hypervisor leaf
        }
        if (t.get(KVM_FEATURES_LEAF, 0) == null) {
            t.entries.add(new Entry(KVM_FEATURES_LEAF, 0, 0, 0, 0, 0, 0)); // KVM reported no paravirt features
        }
        return t;
    }

    private boolean has(int function) {
        for (Entry e : entries) {
            if (e.function == function) {
                return true;
            }
        }
        return false;
    }

    /** Leaf 0xB/0x1F: SMT level (one thread per core), core level (every vCPU in one package), then the invalid level. */
    private void setTopology(int leaf, int apicId, int cpuCount, int coreBits) {
        entries.removeIf(e -> e.function == leaf);
        int significant = KvmIoctls.CPUID_FLAG_SIGNIFCANT_INDEX;
        entries.add(new Entry(leaf, 0, significant, 0, 1, LEVEL_SMT << 8, apicId));
        entries.add(new Entry(leaf, 1, significant, coreBits, cpuCount, (LEVEL_CORE << 8) | 1, apicId));
        entries.add(new Entry(leaf, 2, significant, 0, 0, 2, apicId));
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("cpuid{");
        for (Entry e : entries) {
            sb.append("\n  ").append(e);
        }
        return sb.append("}").toString();
    }
}
