package io.vmm4j.core.boot;

import io.vmm4j.core.memory.GuestMemory;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.nio.charset.StandardCharsets;

import static io.vmm4j.core.boot.PackedLayouts.U16;
import static io.vmm4j.core.boot.PackedLayouts.U32;
import static io.vmm4j.core.boot.PackedLayouts.U8;
import static io.vmm4j.core.boot.PackedLayouts.bytes;

/**
 * An Intel MultiProcessor Specification 1.4 table, which is how Linux finds the CPUs, the
 * IOAPIC and the ISA and PCI interrupt wiring on a PC without ACPI (arch/x86/kernel/mpparse.c
 * scans the last KiB below 640 KiB for the floating pointer). It describes what KVM's in-kernel
 * irqchip emulates: one local APIC per vCPU at 0xFEE00000, one IOAPIC at 0xFEC00000 whose pin N is
 * ISA IRQ N (KVM's default GSI routing), the PIC in virtual-wire mode through LINT0 and NMI on
 * LINT1, and PCI bus 0 whose slot S raises INTA on IOAPIC pin {@link #pciIntxPin}(S), so Linux
 * finds an IRQ for a device's INTx (arch/x86/pci/irq.c asks the MP table by bus, slot and pin).
 */
public final class MpTable {
    /** MP spec §4.1: the floating pointer structure, 16 bytes. */
    public static final StructLayout FLOATING_POINTER = MemoryLayout.structLayout(
            bytes("signature", 4), U32.withName("physptr"), U8.withName("length"), U8.withName("specification"),
            U8.withName("checksum"), U8.withName("feature1"), U8.withName("feature2"), bytes("feature3_5", 3)).withName("mpf_intel");
    /** MP spec §4.2: the configuration table header, 44 bytes. */
    public static final StructLayout CONFIG_HEADER = MemoryLayout.structLayout(
            bytes("signature", 4), U16.withName("length"), U8.withName("spec"), U8.withName("checksum"),
            bytes("oem", 8), bytes("productid", 12), U32.withName("oemptr"), U16.withName("oemsize"),
            U16.withName("oemcount"), U32.withName("lapic"), U16.withName("ext_length"), U8.withName("ext_checksum"),
            U8.withName("reserved")).withName("mpc_table");
    /** MP spec §4.3.1: processor entry, 20 bytes. */
    public static final StructLayout PROCESSOR = MemoryLayout.structLayout(
            U8.withName("type"), U8.withName("apicid"), U8.withName("apicver"), U8.withName("cpuflag"),
            U32.withName("cpufeature"), U32.withName("featureflag"), bytes("reserved", 8)).withName("mpc_cpu");
    /** MP spec §4.3.2: bus entry, 8 bytes. */
    public static final StructLayout BUS = MemoryLayout.structLayout(
            U8.withName("type"), U8.withName("busid"), bytes("bustype", 6)).withName("mpc_bus");
    /** MP spec §4.3.3: I/O APIC entry, 8 bytes. */
    public static final StructLayout IOAPIC = MemoryLayout.structLayout(
            U8.withName("type"), U8.withName("apicid"), U8.withName("apicver"), U8.withName("flags"),
            U32.withName("apicaddr")).withName("mpc_ioapic");
    /** MP spec §4.3.4 I/O interrupt and §4.3.5 local interrupt assignment entries share this 8-byte form. */
    public static final StructLayout INTERRUPT = MemoryLayout.structLayout(
            U8.withName("type"), U8.withName("irqtype"), U16.withName("irqflag"), U8.withName("srcbus"),
            U8.withName("srcbusirq"), U8.withName("dstapic"), U8.withName("dstirq")).withName("mpc_intsrc");

    // MP spec Table 4-3 entry types, Table 4-8 interrupt types
    static final int ENTRY_PROCESSOR = 0;
    static final int ENTRY_BUS = 1;
    static final int ENTRY_IOAPIC = 2;
    static final int ENTRY_IO_INTERRUPT = 3;
    static final int ENTRY_LOCAL_INTERRUPT = 4;
    static final int INT_VECTORED = 0;
    static final int INT_NMI = 1;
    static final int INT_EXTINT = 3;
    static final int CPU_ENABLED = 0x1;
    static final int CPU_BOOTSTRAP = 0x2;
    static final int IOAPIC_USABLE = 0x1;
    /** "Conforms to the specification of the bus": for ISA, edge-triggered, active high (§4.3.4, Table 4-10). */
    static final int POLARITY_TRIGGER_CONFORMING = 0;

    public static final long LOCAL_APIC_ADDRESS = 0xFEE0_0000L;
    public static final long IOAPIC_ADDRESS = 0xFEC0_0000L;
    /** The version KVM's local APIC reports in its version register (arch/x86/kvm/lapic.c APIC_VERSION). */
    static final int LOCAL_APIC_VERSION = 0x14;
    /** The version KVM's IOAPIC reports (arch/x86/kvm/ioapic.h IOAPIC_VERSION_ID). */
    static final int IOAPIC_VERSION = 0x11;
    /** ISA IRQs 0-15 are wired to IOAPIC pins 0-15. */
    static final int ISA_IRQS = 16;
    /** The bus ids: PCI first, because Linux matches an MP PCI bus id against the PCI bus number (io_apic.c). */
    static final int PCI_BUS_ID = 0;
    static final int ISA_BUS_ID = 1;
    /** PCI slots per bus (device numbers 0-31); each gets its INTA routed. */
    static final int PCI_SLOTS = 32;
    /** KVM's IOAPIC has 24 pins (KVM_IOAPIC_NUM_PINS); those above the ISA IRQs take PCI INTx. */
    static final int FIRST_PCI_PIN = 16;
    static final int PCI_PINS = 8;
    /** Family 6 (the CPU signature field, §4.3.1; Linux only prints it) and features FPU | APIC (CPUID.1:EDX bits 0, 9). */
    static final int CPU_SIGNATURE = 0x600;
    static final int CPU_FEATURES = 0x201;
    /** APIC ids are 8 bits and the IOAPIC takes one after the vCPUs. */
    public static final int MAX_CPUS = 254;

    private static final long FLOATING_POINTER_SIZE = FLOATING_POINTER.byteSize();

    private MpTable() {
    }

    /** Bytes the floating pointer and configuration table take for {@code cpus} processors. */
    public static long size(int cpus) {
        return FLOATING_POINTER_SIZE + CONFIG_HEADER.byteSize() + cpus * PROCESSOR.byteSize() + 2 * BUS.byteSize() + IOAPIC.byteSize()
                + (ISA_IRQS + PCI_SLOTS + 2L) * INTERRUPT.byteSize();
    }

    /**
     * The IOAPIC pin (= KVM GSI, by KVM's default routing) that INTA of PCI bus 0 slot {@code slot}
     * is wired to: pins 16-23 in turn, shared by slots 8 apart (level-triggered, so sharing works).
     */
    public static int pciIntxPin(int slot) {
        if (slot < 0 || slot >= PCI_SLOTS) {
            throw new IllegalArgumentException("PCI slots are 0 to " + (PCI_SLOTS - 1) + ", not " + slot);
        }
        return FIRST_PCI_PIN + slot % PCI_PINS;
    }

    /** The IOAPIC's id: the first APIC id after the vCPUs' (0 .. cpus-1). */
    public static int ioapicId(int cpus) {
        return cpus;
    }

    /**
     * Writes the floating pointer at {@code address} (16-byte aligned; Linux looks in the last KiB of
     * base memory, the EBDA, and the BIOS area) with the configuration table right after it.
     */
    public static void write(GuestMemory memory, long address, int cpus) {
        if (cpus < 1 || cpus > MAX_CPUS) {
            throw new IllegalArgumentException("an MP table describes 1 to " + MAX_CPUS + " CPUs, not " + cpus);
        }
        if ((address & 0xF) != 0) {
            throw new IllegalArgumentException(String.format("the MP floating pointer must be 16-byte aligned (§4.1), not at 0x%x", address));
        }
        long size = size(cpus);
        MemorySegment m = memory.slice(address, size);
        m.fill((byte) 0);
        int ioapic = ioapicId(cpus);

        long table = FLOATING_POINTER_SIZE;
        long at = table + CONFIG_HEADER.byteSize();
        int entries = 0;
        for (int cpu = 0; cpu < cpus; cpu++) {
            set(m, PROCESSOR, at, "type", ENTRY_PROCESSOR);
            set(m, PROCESSOR, at, "apicid", cpu);
            set(m, PROCESSOR, at, "apicver", LOCAL_APIC_VERSION);
            set(m, PROCESSOR, at, "cpuflag", CPU_ENABLED | (cpu == 0 ? CPU_BOOTSTRAP : 0));
            set(m, PROCESSOR, at, "cpufeature", CPU_SIGNATURE);
            set(m, PROCESSOR, at, "featureflag", CPU_FEATURES);
            at += PROCESSOR.byteSize();
            entries++;
        }
        // §4.3.2 Table 4-8: bus type strings are blank-padded
        at = bus(m, at, PCI_BUS_ID, "PCI   ");
        at = bus(m, at, ISA_BUS_ID, "ISA   ");
        entries += 2;
        set(m, IOAPIC, at, "type", ENTRY_IOAPIC);
        set(m, IOAPIC, at, "apicid", ioapic);
        set(m, IOAPIC, at, "apicver", IOAPIC_VERSION);
        set(m, IOAPIC, at, "flags", IOAPIC_USABLE);
        set(m, IOAPIC, at, "apicaddr", IOAPIC_ADDRESS);
        at += IOAPIC.byteSize();
        entries++;
        for (int irq = 0; irq < ISA_IRQS; irq++) {
            at = interrupt(m, at, ENTRY_IO_INTERRUPT, INT_VECTORED, ISA_BUS_ID, irq, ioapic, irq);
            entries++;
        }
        // §4.3.4 (and the PCI appendix D.3): a PCI source IRQ is the device number in bits 6:2 and
        // the pin (0 = INTA) in bits 1:0; "conforming" flags mean level-triggered, active low for PCI
        for (int slot = 0; slot < PCI_SLOTS; slot++) {
            at = interrupt(m, at, ENTRY_IO_INTERRUPT, INT_VECTORED, PCI_BUS_ID, slot << 2, ioapic, pciIntxPin(slot));
            entries++;
        }
        // §5.1 virtual wire mode: the PIC's INTR reaches the BSP's LINT0 as ExtINT; NMI goes to LINT1 of every CPU
        at = interrupt(m, at, ENTRY_LOCAL_INTERRUPT, INT_EXTINT, ISA_BUS_ID, 0, 0, 0);
        at = interrupt(m, at, ENTRY_LOCAL_INTERRUPT, INT_NMI, ISA_BUS_ID, 0, 0xFF, 1);
        entries += 2;

        chars(m, CONFIG_HEADER, table, "signature", "PCMP");
        set(m, CONFIG_HEADER, table, "length", at - table);
        set(m, CONFIG_HEADER, table, "spec", 4); // revision 1.4
        chars(m, CONFIG_HEADER, table, "oem", "VMM4J   ");
        chars(m, CONFIG_HEADER, table, "productid", "LINUX GUEST ");
        set(m, CONFIG_HEADER, table, "oemcount", entries);
        set(m, CONFIG_HEADER, table, "lapic", LOCAL_APIC_ADDRESS);
        set(m, CONFIG_HEADER, table, "checksum", checksum(m.asSlice(table, at - table)));

        chars(m, FLOATING_POINTER, 0, "signature", "_MP_");
        set(m, FLOATING_POINTER, 0, "physptr", address + table);
        set(m, FLOATING_POINTER, 0, "length", 1);        // in 16-byte paragraphs
        set(m, FLOATING_POINTER, 0, "specification", 4); // 1.4
        set(m, FLOATING_POINTER, 0, "feature1", 0);      // 0: a configuration table is present (no default configuration)
        set(m, FLOATING_POINTER, 0, "checksum", checksum(m.asSlice(0, FLOATING_POINTER_SIZE)));
    }

    private static long bus(MemorySegment m, long at, int id, String type) {
        set(m, BUS, at, "type", ENTRY_BUS);
        set(m, BUS, at, "busid", id);
        chars(m, BUS, at, "bustype", type);
        return at + BUS.byteSize();
    }

    private static long interrupt(MemorySegment m, long at, int entryType, int irqType, int sourceBus, int sourceIrq, int destination,
                                  int pin) {
        set(m, INTERRUPT, at, "type", entryType);
        set(m, INTERRUPT, at, "irqtype", irqType);
        set(m, INTERRUPT, at, "irqflag", POLARITY_TRIGGER_CONFORMING);
        set(m, INTERRUPT, at, "srcbus", sourceBus);
        set(m, INTERRUPT, at, "srcbusirq", sourceIrq);
        set(m, INTERRUPT, at, "dstapic", destination);
        set(m, INTERRUPT, at, "dstirq", pin);
        return at + INTERRUPT.byteSize();
    }

    /** The byte that makes {@code bytes} (its own checksum field included, as 0) sum to zero mod 256 (§4.1, §4.2). */
    static int checksum(MemorySegment bytes) {
        int sum = 0;
        for (long i = 0; i < bytes.byteSize(); i++) {
            sum += bytes.get(U8, i);
        }
        return -sum & 0xFF;
    }

    private static void set(MemorySegment m, StructLayout struct, long base, String field, long value) {
        PackedLayouts.Field.of(struct, field).set(m, base, value);
    }

    private static void chars(MemorySegment m, StructLayout struct, long base, String field, String text) {
        long offset = struct.byteOffset(MemoryLayout.PathElement.groupElement(field));
        long length = struct.select(MemoryLayout.PathElement.groupElement(field)).byteSize();
        byte[] b = text.getBytes(StandardCharsets.US_ASCII);
        if (b.length != length) {
            throw new IllegalArgumentException(field + " takes " + length + " characters, not \"" + text + "\"");
        }
        MemorySegment.copy(b, 0, m, U8, base + offset, b.length);
    }
}
