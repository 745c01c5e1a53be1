package io.vmm4j.core.boot;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Little-endian value layouts with byte alignment, for the packed structures of the x86 boot
 * protocol and the MP specification (x86 is little-endian; the C structs are
 * {@code __attribute__((packed))}), and VarHandles bound to a field of such a struct.
 */
final class PackedLayouts {
    static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private PackedLayouts() {
    }

    /** {@code count} bytes, named (a char array or reserved space). */
    static MemoryLayout bytes(String name, long count) {
        return MemoryLayout.sequenceLayout(count, U8).withName(name);
    }

    /** One field of a struct, read and written at the struct's base offset in a segment. */
    record Field(String name, ValueLayout layout, long offset, VarHandle handle) {
        static Field of(StructLayout struct, String name) {
            MemoryLayout.PathElement path = MemoryLayout.PathElement.groupElement(name);
            ValueLayout layout = (ValueLayout) struct.select(path);
            return new Field(name, layout, struct.byteOffset(path), struct.varHandle(path));
        }

        /** The field as an unsigned number. */
        long get(MemorySegment s, long base) {
            Object v = handle.get(s, base);
            return switch (v) {
                case Byte b -> b & 0xFFL;
                case Short h -> h & 0xFFFFL;
                case Integer i -> i & 0xFFFF_FFFFL;
                case Long l -> l;
                default -> throw new IllegalStateException("field " + name + " is not an integer");
            };
        }

        void set(MemorySegment s, long base, long value) {
            switch (layout) {
                case ValueLayout.OfByte b -> handle.set(s, base, (byte) value);
                case ValueLayout.OfShort h -> handle.set(s, base, (short) value);
                case ValueLayout.OfInt i -> handle.set(s, base, (int) value);
                case ValueLayout.OfLong l -> handle.set(s, base, value);
                default -> throw new IllegalStateException("field " + name + " is not an integer");
            }
        }
    }
}
