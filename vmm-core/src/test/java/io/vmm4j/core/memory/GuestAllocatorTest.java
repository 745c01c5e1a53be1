package io.vmm4j.core.memory;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class GuestAllocatorTest {
    @Test
    void alignsAndRefusesWhenFull() {
        GuestAllocator alloc = new GuestAllocator(0x1000, 0x100);
        assertEquals(0x1000, alloc.allocate(3, 1));
        assertEquals(0x1010, alloc.allocate(16, 16));
        assertEquals(0x1040, alloc.allocate(0x40, 0x40));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> alloc.allocate(0x81, 1));
        assertEquals(true, e.getMessage().contains("exhausted"));
        assertEquals(0x1080, alloc.allocate(0x80, 1), "a refused request takes nothing");
        assertThrows(IllegalArgumentException.class, () -> alloc.allocate(1, 3));
    }
}
