package io.vmm4j.guest;

import io.vmm4j.core.memory.GuestMemory;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The contract with the C guest (src/main/c/abi.h; GuestAbiTest compiles that header and compares):
 * guest-physical layout, I/O ports, the boot parameters the VMM writes and the results the guest
 * writes before it reports done.
 */
public final class GuestAbi {
    public static final int ABI_VERSION = 1;

    public static final long BOOT_PARAMS_ADDRESS = 0x7000;
    public static final long RESULTS_ADDRESS = 0x8000;
    public static final long LOAD_ADDRESS = 0x10000;
    public static final long IMAGE_LIMIT = 0x70000;
    public static final long STACK_TOP = 0x80000;
    public static final long HEAP_START = 0x10_0000;

    public static final int PORT_SERIAL = 0x3F8;
    /** 32-bit OUT: the guest is done; the value is its status (0: success). */
    public static final int PORT_DONE = 0x510;
    /** 32-bit OUT: {@link #PHASE_QUIET_BEGIN} or {@link #PHASE_QUIET_END} around steady traffic. */
    public static final int PORT_PHASE = 0x514;
    public static final int PHASE_QUIET_BEGIN = 1;
    public static final int PHASE_QUIET_END = 2;

    public static final int BOOT_MAGIC = 0x4734_4A56;
    public static final int RESULTS_MAGIC = 0x5234_4A56;
    public static final int FLAG_EVENT_IDX = 1;

    public static final int STATUS_OK = 0;
    public static final int STATUS_BAD_PARAMS = 1;
    public static final int STATUS_NO_DEVICE = 2;
    public static final int STATUS_DEVICE_ERROR = 3;
    public static final int STATUS_PANIC = 4;
    public static final int STATUS_EXCEPTION = 0x100;
    public static final int MAX_RTTS = 512;

    // struct boot_params
    static final int BP_MAGIC = 0;
    static final int BP_ABI_VERSION = 4;
    static final int BP_TSC_KHZ = 8;
    static final int BP_GUEST_IP = 16;
    static final int BP_TARGET_IP = 20;
    static final int BP_PING_COUNT = 24;
    static final int BP_PING_INTERVAL_MS = 28;
    static final int BP_PING_SIZE = 32;
    static final int BP_SERVE_MS = 36;
    static final int BP_FLAGS = 40;
    static final int BP_SIZE = 48;
    // struct guest_results
    static final int R_MAGIC = 0;
    static final int R_STATUS = 4;
    static final int R_FEATURES = 8;
    static final int R_PINGS_SENT = 16;
    static final int R_PINGS_RECEIVED = 20;
    static final int R_ECHO_ANSWERED = 24;
    static final int R_KICKS = 28;
    static final int R_CONFIG_INTERRUPTS = 32;
    static final int R_RX_INTERRUPTS = 36;
    static final int R_TX_INTERRUPTS = 40;
    static final int R_TIMER_INTERRUPTS = 44;
    static final int R_RNG_LENGTH = 48;
    static final int R_RNG = 52;
    static final int R_RTT_COUNT = 68;
    static final int R_RTT_NS = 72;
    static final int R_ERROR = R_RTT_NS + 4 * MAX_RTTS;
    static final int R_ERROR_SIZE = 128;
    static final int R_SIZE = R_ERROR + R_ERROR_SIZE;

    private GuestAbi() {
    }

    /** What the VMM tells the guest; IPv4 addresses as a.b.c.d = (a << 24) | ... */
    public record BootParams(long tscKhz, int guestIp, int targetIp, int pingCount, int pingIntervalMs, int pingSize, int serveMs,
                             int flags) {
        public void writeTo(GuestMemory memory) {
            long a = BOOT_PARAMS_ADDRESS;
            memory.fill(a, BP_SIZE, (byte) 0);
            memory.writeInt(a + BP_MAGIC, BOOT_MAGIC);
            memory.writeInt(a + BP_ABI_VERSION, ABI_VERSION);
            memory.writeLong(a + BP_TSC_KHZ, tscKhz);
            memory.writeInt(a + BP_GUEST_IP, guestIp);
            memory.writeInt(a + BP_TARGET_IP, targetIp);
            memory.writeInt(a + BP_PING_COUNT, pingCount);
            memory.writeInt(a + BP_PING_INTERVAL_MS, pingIntervalMs);
            memory.writeInt(a + BP_PING_SIZE, pingSize);
            memory.writeInt(a + BP_SERVE_MS, serveMs);
            memory.writeInt(a + BP_FLAGS, flags);
        }
    }

    /** What the guest reported; {@code valid} is false when it never wrote its results (it died first). */
    public record Results(boolean valid, int status, long features, int pingsSent, int pingsReceived, int echoRequestsAnswered,
                          int kicks, int configInterrupts, int rxInterrupts, int txInterrupts, int timerInterrupts, byte[] rng,
                          List<Long> rttNs, String error) {
        public static Results readFrom(GuestMemory memory) {
            long a = RESULTS_ADDRESS;
            boolean valid = memory.readInt(a + R_MAGIC) == RESULTS_MAGIC;
            int rngLength = Math.min(memory.readInt(a + R_RNG_LENGTH), 16);
            byte[] rng = new byte[Math.max(rngLength, 0)];
            memory.read(a + R_RNG, rng, 0, rng.length);
            int count = Math.min(Math.max(memory.readInt(a + R_RTT_COUNT), 0), MAX_RTTS);
            List<Long> rtts = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                rtts.add(memory.readInt(a + R_RTT_NS + 4L * i) & 0xFFFF_FFFFL);
            }
            byte[] error = new byte[R_ERROR_SIZE];
            memory.read(a + R_ERROR, error, 0, error.length);
            int end = 0;
            while (end < error.length && error[end] != 0) {
                end++;
            }
            return new Results(valid, memory.readInt(a + R_STATUS), memory.readLong(a + R_FEATURES), memory.readInt(a + R_PINGS_SENT),
                    memory.readInt(a + R_PINGS_RECEIVED), memory.readInt(a + R_ECHO_ANSWERED), memory.readInt(a + R_KICKS),
                    memory.readInt(a + R_CONFIG_INTERRUPTS), memory.readInt(a + R_RX_INTERRUPTS), memory.readInt(a + R_TX_INTERRUPTS),
                    memory.readInt(a + R_TIMER_INTERRUPTS), rng, List.copyOf(rtts),
                    new String(error, 0, end, StandardCharsets.US_ASCII));
        }
    }

    /** A dotted IPv4 address as the guest wants it: (a << 24) | (b << 16) | (c << 8) | d. */
    public static int ipv4(String dotted) {
        String[] parts = dotted.split("\\.");
        if (parts.length != 4) {
            throw new IllegalArgumentException("not an IPv4 address: '" + dotted + "'");
        }
        int v = 0;
        for (String p : parts) {
            int octet = Integer.parseInt(p);
            if (octet < 0 || octet > 255) {
                throw new IllegalArgumentException("not an IPv4 address: '" + dotted + "'");
            }
            v = (v << 8) | octet;
        }
        return v;
    }
}
