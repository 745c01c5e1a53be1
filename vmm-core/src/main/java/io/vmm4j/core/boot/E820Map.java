package io.vmm4j.core.boot;

import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.core.memory.MemoryRegion;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The BIOS memory map a PC firmware would hand Linux (int 15h, eax=E820h), as it goes into
 * {@code boot_params.e820_table} (zero-page.rst 0x2D0; {@code struct boot_e820_entry} in
 * asm/bootparam.h). Address ranges not listed are not RAM: Linux treats them as holes, so the
 * PCI window below 4 GiB simply has no entry.
 */
public final class E820Map {
    /** asm/e820.h E820_RAM: usable memory. */
    public static final int RAM = 1;
    /** asm/e820.h E820_RESERVED: the kernel keeps its hands off. */
    public static final int RESERVED = 2;
    /** The zero page holds at most this many entries (E820_MAX_ENTRIES_ZEROPAGE). */
    public static final int MAX_ENTRIES = 128;

    /** The Extended BIOS Data Area: the last KiB below 640 KiB, where this VMM puts the MP table. */
    public static final long EBDA_START = 0x9_FC00;
    /** 640 KiB: conventional memory ends, the VGA window starts. */
    public static final long LOW_MEMORY_END = 0xA_0000;
    /** The system BIOS area [0xF0000, 0x100000), where Linux scans for firmware tables. */
    public static final long BIOS_AREA_START = 0xF_0000;
    /** 1 MiB: extended memory ("high memory" in boot.rst) starts. */
    public static final long HIGH_MEMORY_START = 0x10_0000;

    /** One range; the type is {@link #RAM} or {@link #RESERVED} (others exist, for ACPI). */
    public record Entry(long address, long size, int type) {
        public long end() {
            return address + size;
        }

        @Override
        public String toString() {
            return String.format("[0x%x, 0x%x) %s", address, end(), type == RAM ? "RAM" : type == RESERVED ? "reserved" : "type " + type);
        }
    }

    private final List<Entry> entries;

    public E820Map(List<Entry> entries) {
        if (entries.size() > MAX_ENTRIES) {
            throw new IllegalArgumentException("an e820 map in the zero page holds at most " + MAX_ENTRIES + " entries, not " + entries.size());
        }
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::address));
        for (int i = 1; i < sorted.size(); i++) {
            if (sorted.get(i).address() < sorted.get(i - 1).end()) {
                throw new IllegalArgumentException("e820 entries overlap: " + sorted.get(i - 1) + " and " + sorted.get(i));
            }
        }
        this.entries = List.copyOf(sorted);
    }

    /**
     * The PC map for {@code memory}: RAM below the EBDA, the EBDA and the BIOS area reserved, the
     * VGA/option-ROM window [640 KiB, 960 KiB) absent, every byte of guest RAM from 1 MiB up as RAM
     * (so the gap between a region below the PCI hole and one above 4 GiB is no RAM).
     */
    public static E820Map forPc(GuestMemory memory) {
        List<Entry> e = new ArrayList<>();
        for (MemoryRegion r : memory.regions()) {
            clip(e, r, 0, EBDA_START, RAM);
            clip(e, r, HIGH_MEMORY_START, Long.MAX_VALUE, RAM);
        }
        e.add(new Entry(EBDA_START, LOW_MEMORY_END - EBDA_START, RESERVED));
        e.add(new Entry(BIOS_AREA_START, HIGH_MEMORY_START - BIOS_AREA_START, RESERVED));
        return new E820Map(e);
    }

    private static void clip(List<Entry> out, MemoryRegion r, long from, long to, int type) {
        long start = Math.max(r.guestAddress(), from);
        long end = Math.min(r.guestEnd(), to);
        if (end > start) {
            out.add(new Entry(start, end - start, type));
        }
    }

    public List<Entry> entries() {
        return entries;
    }

    /** The RAM entry holding {@code [address, address + length)}, or null. */
    public Entry ramContaining(long address, long length) {
        for (Entry x : entries) {
            if (x.type() == RAM && address >= x.address() && length <= x.end() - address) {
                return x;
            }
        }
        return null;
    }

    @Override
    public String toString() {
        return "e820" + entries;
    }
}
