package io.vmm4j.core.boot;

import io.vmm4j.core.testing.HostRequirements;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** bzImages for tests: synthetic ones with chosen header fields, and the lab's cached Debian kernel. */
public final class TestKernels {
    public static final int SETUP_SECTS = 4;
    static final int BODY = 64 * 1024;
    static final long INIT_SIZE = 16L << 20;
    static final String VERSION = "6.99.0-test (vmm4j) #1 SMP";

    private TestKernels() {
    }

    /** A header that passes every check: protocol 2.15, loaded high, 64-bit entry, relocatable at 2 MiB. */
    public static ByteBuffer valid() {
        int kernelOffset = (SETUP_SECTS + 1) * 512;
        ByteBuffer b = ByteBuffer.allocate(kernelOffset + BODY).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0x1F1, (byte) SETUP_SECTS);
        b.putInt(0x1F4, BODY / 16);
        b.putShort(0x1FA, (short) 0xFFFF);
        b.putShort(0x1FE, (short) 0xAA55);
        b.put(0x200, (byte) 0xEB);
        b.put(0x201, (byte) 0x6A); // header ends at 0x26c, protocol 2.15
        b.putInt(0x202, 0x53726448);
        b.putShort(0x206, (short) 0x020F);
        b.putShort(0x20E, (short) 0x600); // version string at 0x800
        b.put(0x211, (byte) 0x01);
        b.putInt(0x214, 0x100000);
        b.putInt(0x22C, 0x7FFF_FFFF);
        b.putInt(0x230, 0x20_0000);
        b.put(0x234, (byte) 1);
        b.put(0x235, (byte) 21);
        b.putShort(0x236, (short) 0x7F);
        b.putInt(0x238, 2047);
        b.putLong(0x258, 0x100_0000);
        b.putInt(0x260, (int) INIT_SIZE);
        byte[] v = VERSION.getBytes(StandardCharsets.US_ASCII);
        b.put(0x800, v);
        for (int i = 0; i < BODY; i++) {
            b.put(kernelOffset + i, (byte) (i * 7 + 3));
        }
        return b;
    }

    public static byte[] bytes(ByteBuffer b) {
        return b.array().clone();
    }

    /** The lab's cached Debian vmlinuz (scripts/lab/vmm4j-lab prepare), or a skip. */
    public static Path labKernel() {
        Path cache = Path.of(System.getenv().getOrDefault("VMM4J_LAB_CACHE", "/var/cache/vmm4j-lab"));
        Path current = cache.resolve("current");
        Path vmlinuz = null;
        try {
            if (Files.isRegularFile(current)) {
                vmlinuz = cache.resolve("kernels").resolve(Files.readString(current).trim()).resolve("vmlinuz");
            }
        } catch (java.io.IOException e) {
            vmlinuz = null;
        }
        HostRequirements.require(vmlinuz != null && Files.isRegularFile(vmlinuz),
                "the lab's cached Debian kernel under " + cache + " (run: scripts/lab/vmm4j-lab prepare)");
        return vmlinuz;
    }
}
