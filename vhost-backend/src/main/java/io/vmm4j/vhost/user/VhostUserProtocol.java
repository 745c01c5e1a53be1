package io.vmm4j.vhost.user;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Constants of the vhost-user protocol (QEMU docs/interop/vhost-user.rst) shared by the front-end and the back-end. */
public final class VhostUserProtocol {
    /** "Header": request, flags and size, 32 bits each. */
    public static final int HEADER_SIZE = 12;
    /** "Header": the lower 2 bits of flags are the version, currently 0x01. */
    public static final int VERSION = 0x1;
    public static final int VERSION_MASK = 0x3;
    /** "Header": bit 2, set on every reply from the back-end. */
    public static final int FLAG_REPLY = 0x4;
    /** "Header": bit 3, the front-end wants a REPLY_ACK answer ("REPLY_ACK" section). */
    public static final int FLAG_NEED_REPLY = 0x8;

    /** "Communication": VHOST_USER_F_PROTOCOL_FEATURES, the reserved virtio bit 30 reused for protocol feature negotiation. */
    public static final int F_PROTOCOL_FEATURES = 30;

    /** "Protocol features" bit numbers. */
    public static final int PROTOCOL_F_MQ = 0;
    public static final int PROTOCOL_F_LOG_SHMFD = 1;
    public static final int PROTOCOL_F_RARP = 2;
    public static final int PROTOCOL_F_REPLY_ACK = 3;
    public static final int PROTOCOL_F_NET_MTU = 4;
    public static final int PROTOCOL_F_SLAVE_REQ = 5;
    public static final int PROTOCOL_F_CONFIG = 9;
    /** "Inflight I/O tracking": GET_INFLIGHT_FD/SET_INFLIGHT_FD carry a shared record of what each ring has in flight. */
    public static final int PROTOCOL_F_INFLIGHT_SHMFD = 12;
    public static final int PROTOCOL_F_RESET_DEVICE = 13;
    public static final int PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15;
    public static final int PROTOCOL_F_STATUS = 16;

    /** SET_VRING_KICK/CALL/ERR: bits 0-7 of the u64 are the vring index. */
    public static final long VRING_INDEX_MASK = 0xFF;
    /** SET_VRING_KICK/CALL/ERR: bit 8 is the invalid-fd flag: no fd in the ancillary data. */
    public static final long VRING_NOFD = 0x100;
    /** vhost_vring_addr flags: VHOST_VRING_F_LOG, log used-ring writes (migration). */
    public static final int VRING_F_LOG = 0x1;

    /** "Memory regions description": at most 8 regions (VHOST_MEMORY_BASELINE_NREGIONS) without CONFIGURE_MEM_SLOTS. */
    public static final int MAX_MEMORY_REGIONS = 8;
    /** "Memory regions description": num regions and padding, then 32 bytes per region. */
    public static final int MEMORY_TABLE_HEADER_SIZE = 8;
    public static final int MEMORY_REGION_SIZE = 32;
    /** "A vring state description": index and num, 32 bits each. */
    public static final int VRING_STATE_SIZE = 8;
    /** "A vring address description": index, flags, then desc, used, avail and log addresses. */
    public static final int VRING_ADDRESS_SIZE = 40;
    public static final int U64_SIZE = 8;
    /** "Inflight description": mmap size u64, mmap offset u64, num queues u16, queue size u16 (24 bytes with C's padding, as QEMU and DPDK send it). */
    public static final int INFLIGHT_SIZE = 24;
    /** The inflight description without the trailing padding. */
    public static final int INFLIGHT_MIN_SIZE = 20;
    /** The largest payload either side accepts: a full memory table is 264 bytes, a config space message 268. */
    public static final int MAX_PAYLOAD = 4096;

    private static final Map<Integer, String> PROTOCOL_NAMES = Map.ofEntries(Map.entry(PROTOCOL_F_MQ, "MQ"),
            Map.entry(PROTOCOL_F_LOG_SHMFD, "LOG_SHMFD"), Map.entry(PROTOCOL_F_RARP, "RARP"), Map.entry(PROTOCOL_F_REPLY_ACK, "REPLY_ACK"),
            Map.entry(PROTOCOL_F_NET_MTU, "NET_MTU"), Map.entry(PROTOCOL_F_SLAVE_REQ, "SLAVE_REQ"), Map.entry(PROTOCOL_F_CONFIG, "CONFIG"),
            Map.entry(PROTOCOL_F_INFLIGHT_SHMFD, "INFLIGHT_SHMFD"), Map.entry(PROTOCOL_F_RESET_DEVICE, "RESET_DEVICE"),
            Map.entry(PROTOCOL_F_CONFIGURE_MEM_SLOTS, "CONFIGURE_MEM_SLOTS"), Map.entry(PROTOCOL_F_STATUS, "STATUS"));

    private VhostUserProtocol() {
    }

    public static long bit(int feature) {
        return 1L << feature;
    }

    public static boolean has(long features, int feature) {
        return (features & (1L << feature)) != 0;
    }

    /** Names of protocol feature bits, {@code bitN} for those without one here. */
    public static List<String> protocolFeatureNames(long features) {
        List<String> names = new ArrayList<>();
        for (int b = 0; b < 64; b++) {
            if (has(features, b)) {
                names.add(PROTOCOL_NAMES.getOrDefault(b, "bit" + b));
            }
        }
        return names;
    }
}
