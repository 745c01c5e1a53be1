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
    public static final int ABI_VERSION = 2;

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

    /** {@link BootParams#workload()}: none (pings and serving only), a UDP flood to the host, or counting the host's flood. */
    public static final int WORKLOAD_NONE = 0;
    public static final int WORKLOAD_TX_FLOOD = 1;
    public static final int WORKLOAD_RX_COUNT = 2;
    /** Flood frame sizes: Ethernet bytes without FCS (14 + 20 + 8 + UDP payload). */
    public static final int MIN_FLOOD_FRAME = 60;
    public static final int MAX_FLOOD_FRAME = 1514;

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
    static final int BP_WORKLOAD = 44;
    static final int BP_FRAME_SIZE = 48;
    static final int BP_FLOOD_MS = 52;
    static final int BP_UDP_PORT = 56;
    static final int BP_SIZE = 64;
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
    static final int R_FLOOD_FRAMES = R_ERROR + R_ERROR_SIZE;
    static final int R_FLOOD_BYTES = R_FLOOD_FRAMES + 8;
    static final int R_FLOOD_NS = R_FLOOD_BYTES + 8;
    static final int R_FLOOD_OTHER_FRAMES = R_FLOOD_NS + 8;
    static final int R_FLOOD_KICKS = R_FLOOD_OTHER_FRAMES + 8;
    static final int R_FLOOD_INTERRUPTS = R_FLOOD_KICKS + 4;
    static final int R_FRAMES_TRANSMITTED = R_FLOOD_INTERRUPTS + 4;
    static final int R_FRAMES_RECEIVED = R_FRAMES_TRANSMITTED + 8;
    static final int R_SIZE = R_FRAMES_RECEIVED + 8;

    private GuestAbi() {
    }

    /**
     * What the VMM tells the guest; IPv4 addresses as a.b.c.d = (a << 24) | ... After its pings the guest runs
     * {@code workload} ({@code WORKLOAD_*}) for {@code floodMs}: frames of {@code frameSize} bytes to {@code targetIp:udpPort},
     * or counting those to its own {@code udpPort}; then it serves for {@code serveMs}.
     */
    public record BootParams(long tscKhz, int guestIp, int targetIp, int pingCount, int pingIntervalMs, int pingSize, int serveMs,
                             int flags, int workload, int frameSize, int floodMs, int udpPort) {
        /** Pings and serving only. */
        public BootParams(long tscKhz, int guestIp, int targetIp, int pingCount, int pingIntervalMs, int pingSize, int serveMs, int flags) {
            this(tscKhz, guestIp, targetIp, pingCount, pingIntervalMs, pingSize, serveMs, flags, WORKLOAD_NONE, 0, 0, 0);
        }

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
            memory.writeInt(a + BP_WORKLOAD, workload);
            memory.writeInt(a + BP_FRAME_SIZE, frameSize);
            memory.writeInt(a + BP_FLOOD_MS, floodMs);
            memory.writeInt(a + BP_UDP_PORT, udpPort);
        }
    }

    /**
     * What the guest reported; {@code valid} is false when it never wrote its results (it died first).
     *
     * @param flood              the flood workload's counts (zero without one)
     * @param framesTransmitted  every frame the guest queued for sending: its flood's and its stack's (ARP, ICMP)
     * @param framesReceived     every frame the device handed the guest
     */
    public record Results(boolean valid, int status, long features, int pingsSent, int pingsReceived, int echoRequestsAnswered,
                          int kicks, int configInterrupts, int rxInterrupts, int txInterrupts, int timerInterrupts, byte[] rng,
                          List<Long> rttNs, String error, Flood flood, long framesTransmitted, long framesReceived) {
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
            Flood flood = new Flood(memory.readLong(a + R_FLOOD_FRAMES), memory.readLong(a + R_FLOOD_BYTES), memory.readLong(a + R_FLOOD_NS),
                    memory.readLong(a + R_FLOOD_OTHER_FRAMES), memory.readInt(a + R_FLOOD_KICKS) & 0xFFFF_FFFFL,
                    memory.readInt(a + R_FLOOD_INTERRUPTS) & 0xFFFF_FFFFL);
            return new Results(valid, memory.readInt(a + R_STATUS), memory.readLong(a + R_FEATURES), memory.readInt(a + R_PINGS_SENT),
                    memory.readInt(a + R_PINGS_RECEIVED), memory.readInt(a + R_ECHO_ANSWERED), memory.readInt(a + R_KICKS),
                    memory.readInt(a + R_CONFIG_INTERRUPTS), memory.readInt(a + R_RX_INTERRUPTS), memory.readInt(a + R_TX_INTERRUPTS),
                    memory.readInt(a + R_TIMER_INTERRUPTS), rng, List.copyOf(rtts),
                    new String(error, 0, end, StandardCharsets.US_ASCII), flood, memory.readLong(a + R_FRAMES_TRANSMITTED),
                    memory.readLong(a + R_FRAMES_RECEIVED));
        }
    }

    /**
     * The flood workload as the guest counted it.
     *
     * @param frames      frames sent (every one came back used) or UDP frames to the port counted
     * @param bytes       their Ethernet bytes
     * @param nanos       tx: first publish to the last buffer back; rx: the counting window (the guest's TSC)
     * @param otherFrames other frames received meanwhile (ARP, IPv6, ICMP errors)
     * @param kicks       notify writes the guest made meanwhile
     * @param interrupts  receive and transmit interrupts the guest took meanwhile
     */
    public record Flood(long frames, long bytes, long nanos, long otherFrames, long kicks, long interrupts) {
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
