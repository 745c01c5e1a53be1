package io.vmm4j.vhost.kernel;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The structs the vhost ioctls take, as named layouts (include/uapi/linux/vhost_types.h; native
 * order and alignment). {@code VhostConstantsTest} checks their sizes and offsets against the
 * header with gcc.
 */
public final class VhostLayouts {
    /** {@code struct vhost_vring_state}: a ring and a number (its size, or its base). */
    public static final StructLayout VRING_STATE = MemoryLayout.structLayout(
            JAVA_INT.withName("index"), JAVA_INT.withName("num")).withName("vhost_vring_state");
    /** {@code struct vhost_vring_file}: a ring and an fd (-1 unbinds). */
    public static final StructLayout VRING_FILE = MemoryLayout.structLayout(
            JAVA_INT.withName("index"), JAVA_INT.withName("fd")).withName("vhost_vring_file");
    /** {@code struct vhost_vring_addr}: a ring's areas as user (host virtual) addresses. */
    public static final StructLayout VRING_ADDR = MemoryLayout.structLayout(
            JAVA_INT.withName("index"), JAVA_INT.withName("flags"), JAVA_LONG.withName("desc_user_addr"),
            JAVA_LONG.withName("used_user_addr"), JAVA_LONG.withName("avail_user_addr"),
            JAVA_LONG.withName("log_guest_addr")).withName("vhost_vring_addr");
    /** {@code struct vhost_memory_region}. */
    public static final StructLayout MEMORY_REGION = MemoryLayout.structLayout(
            JAVA_LONG.withName("guest_phys_addr"), JAVA_LONG.withName("memory_size"), JAVA_LONG.withName("userspace_addr"),
            JAVA_LONG.withName("flags_padding")).withName("vhost_memory_region");
    /** {@code struct vhost_memory} without its flexible array of {@link #MEMORY_REGION}s, which follows it. */
    public static final StructLayout MEMORY = MemoryLayout.structLayout(
            JAVA_INT.withName("nregions"), JAVA_INT.withName("padding")).withName("vhost_memory");

    private VhostLayouts() {
    }

    /** A VarHandle on {@code field} of {@code struct}, with coordinates (segment, offset of the struct in it). */
    static VarHandle handle(StructLayout struct, String field) {
        return struct.varHandle(MemoryLayout.PathElement.groupElement(field));
    }
}
