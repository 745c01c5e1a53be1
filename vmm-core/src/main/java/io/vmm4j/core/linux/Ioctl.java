package io.vmm4j.core.linux;

/**
 * The kernel's ioctl request encoding (include/uapi/asm-generic/ioctl.h): direction in bits 30-31,
 * argument size in bits 16-29, type in bits 8-15, number in bits 0-7.
 */
public final class Ioctl {
    private static final int NRBITS = 8;
    private static final int TYPEBITS = 8;
    private static final int SIZEBITS = 14;
    private static final int NRSHIFT = 0;
    private static final int TYPESHIFT = NRSHIFT + NRBITS;
    private static final int SIZESHIFT = TYPESHIFT + TYPEBITS;
    private static final int DIRSHIFT = SIZESHIFT + SIZEBITS;
    private static final long NONE = 0;
    private static final long WRITE = 1;
    private static final long READ = 2;

    private Ioctl() {
    }

    /** {@code _IOC(dir, type, nr, size)}. */
    public static long ioc(long dir, int type, int nr, long size) {
        if (type < 0 || type > 0xFF || nr < 0 || nr > 0xFF || size < 0 || size >= (1L << SIZEBITS)) {
            throw new IllegalArgumentException("ioctl encoding out of range: type=" + type + ", nr=" + nr + ", size=" + size);
        }
        return (dir << DIRSHIFT) | ((long) type << TYPESHIFT) | ((long) nr << NRSHIFT) | (size << SIZESHIFT);
    }

    /** {@code _IO(type, nr)}: no argument. */
    public static long io(int type, int nr) {
        return ioc(NONE, type, nr, 0);
    }

    /** {@code _IOR(type, nr, size)}: the kernel writes {@code size} bytes to user space. */
    public static long ior(int type, int nr, long size) {
        return ioc(READ, type, nr, size);
    }

    /** {@code _IOW(type, nr, size)}: the kernel reads {@code size} bytes from user space. */
    public static long iow(int type, int nr, long size) {
        return ioc(WRITE, type, nr, size);
    }

    /** {@code _IOWR(type, nr, size)}. */
    public static long iowr(int type, int nr, long size) {
        return ioc(READ | WRITE, type, nr, size);
    }
}
