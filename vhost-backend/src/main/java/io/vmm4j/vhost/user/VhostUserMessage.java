package io.vmm4j.vhost.user;

import io.vmm4j.vhost.VringAddress;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import static io.vmm4j.vhost.user.VhostUserProtocol.FLAG_NEED_REPLY;
import static io.vmm4j.vhost.user.VhostUserProtocol.FLAG_REPLY;
import static io.vmm4j.vhost.user.VhostUserProtocol.HEADER_SIZE;
import static io.vmm4j.vhost.user.VhostUserProtocol.MAX_MEMORY_REGIONS;
import static io.vmm4j.vhost.user.VhostUserProtocol.MEMORY_REGION_SIZE;
import static io.vmm4j.vhost.user.VhostUserProtocol.MEMORY_TABLE_HEADER_SIZE;
import static io.vmm4j.vhost.user.VhostUserProtocol.U64_SIZE;
import static io.vmm4j.vhost.user.VhostUserProtocol.VERSION;
import static io.vmm4j.vhost.user.VhostUserProtocol.VRING_ADDRESS_SIZE;
import static io.vmm4j.vhost.user.VhostUserProtocol.VRING_STATE_SIZE;

/**
 * One vhost-user message: the 12-byte header (request, flags, size), the payload, and the file
 * descriptors that rode along as SCM_RIGHTS. Numbers are in the machine's byte order ("Message
 * Specification": native byte order). The size field is always the payload's length; a sender that
 * wants to lie about it builds the bytes itself.
 *
 * @param fds descriptors received with the message (the receiver owns them) or to send with it
 */
public record VhostUserMessage(int request, int flags, byte[] payload, int[] fds) {
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final int[] NO_FDS = new int[0];

    /** A vring state description: {@code num} is unsigned 32-bit (a size, a base, 0/1 for enable). */
    public record VringState(int index, long num) {
    }

    /** A vring address description: the vring, its flags, the user addresses of its three areas, and the log address (unused here). */
    public record VringAddressDescription(int index, int flags, VringAddress address, long logGuestAddr) {
    }

    /** One entry of the memory regions description. */
    public record Region(long guestAddress, long size, long userAddress, long mmapOffset) {
        @Override
        public String toString() {
            return String.format("{gpa 0x%x, size 0x%x, uaddr 0x%x, offset 0x%x}", guestAddress, size, userAddress, mmapOffset);
        }
    }

    /** A front-end request with flags = version 1 and, if {@code needReply}, NEED_REPLY. */
    public static VhostUserMessage request(VhostUserRequest request, boolean needReply, byte[] payload, int... fds) {
        return new VhostUserMessage(request.code(), VERSION | (needReply ? FLAG_NEED_REPLY : 0), payload, fds);
    }

    /** The back-end's reply to {@code to}: same request, version 1 and REPLY. */
    public static VhostUserMessage reply(VhostUserMessage to, byte[] payload) {
        return new VhostUserMessage(to.request, VERSION | FLAG_REPLY, payload, NO_FDS);
    }

    public VhostUserMessage {
        payload = payload == null ? new byte[0] : payload;
        fds = fds == null ? NO_FDS : fds;
    }

    public int size() {
        return payload.length;
    }

    public String name() {
        return VhostUserRequest.describe(request);
    }

    public boolean needsReply() {
        return (flags & FLAG_NEED_REPLY) != 0;
    }

    public boolean isReply() {
        return (flags & FLAG_REPLY) != 0;
    }

    /** Header and payload as they go on the wire. */
    public byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(HEADER_SIZE + payload.length).order(ORDER);
        b.putInt(request).putInt(flags).putInt(payload.length).put(payload);
        return b.array();
    }

    // ---- payload builders ----

    /** "Inflight description". */
    public record Inflight(long mmapSize, long mmapOffset, int numQueues, int queueSize) {
    }

    /** The back-end's reply to {@code to} with descriptors riding along (GET_INFLIGHT_FD). */
    public static VhostUserMessage reply(VhostUserMessage to, byte[] payload, int... fds) {
        return new VhostUserMessage(to.request, VERSION | FLAG_REPLY, payload, fds);
    }

    public static byte[] inflight(Inflight i) {
        return ByteBuffer.allocate(VhostUserProtocol.INFLIGHT_SIZE).order(ORDER).putLong(i.mmapSize()).putLong(i.mmapOffset())
                .putShort((short) i.numQueues()).putShort((short) i.queueSize()).array();
    }

    public static byte[] u64(long value) {
        return ByteBuffer.allocate(U64_SIZE).order(ORDER).putLong(value).array();
    }

    public static byte[] vringState(int index, long num) {
        return ByteBuffer.allocate(VRING_STATE_SIZE).order(ORDER).putInt(index).putInt((int) num).array();
    }

    public static byte[] vringAddress(VringAddressDescription a) {
        return ByteBuffer.allocate(VRING_ADDRESS_SIZE).order(ORDER).putInt(a.index()).putInt(a.flags())
                .putLong(a.address().descriptorTable()).putLong(a.address().usedRing()).putLong(a.address().availRing())
                .putLong(a.logGuestAddr()).array();
    }

    /** A memory regions description with exactly {@code regions.size()} entries (as QEMU sends it). */
    public static byte[] memoryTable(List<Region> regions) {
        ByteBuffer b = ByteBuffer.allocate(MEMORY_TABLE_HEADER_SIZE + MEMORY_REGION_SIZE * regions.size()).order(ORDER);
        b.putInt(regions.size()).putInt(0);
        for (Region r : regions) {
            b.putLong(r.guestAddress()).putLong(r.size()).putLong(r.userAddress()).putLong(r.mmapOffset());
        }
        return b.array();
    }

    // ---- payload readers: each checks the size field against what the request carries ----

    private ByteBuffer exactly(int bytes, String what) {
        if (payload.length != bytes) {
            throw new VhostUserFramingException(name() + " has a " + payload.length + "-byte payload, but its payload is "
                    + what + " of " + bytes + " bytes");
        }
        return ByteBuffer.wrap(payload).order(ORDER);
    }

    public Inflight inflight() {
        if (payload.length < VhostUserProtocol.INFLIGHT_MIN_SIZE || payload.length > VhostUserProtocol.INFLIGHT_SIZE) {
            throw new VhostUserException(name() + " carries " + payload.length + " payload bytes; an inflight description has "
                    + VhostUserProtocol.INFLIGHT_MIN_SIZE + " to " + VhostUserProtocol.INFLIGHT_SIZE);
        }
        ByteBuffer b = ByteBuffer.wrap(payload).order(ORDER);
        return new Inflight(b.getLong(), b.getLong(), Short.toUnsignedInt(b.getShort()), Short.toUnsignedInt(b.getShort()));
    }

    public long u64() {
        return exactly(U64_SIZE, "a u64").getLong();
    }

    public VringState vringState() {
        ByteBuffer b = exactly(VRING_STATE_SIZE, "a vring state");
        return new VringState(b.getInt(), Integer.toUnsignedLong(b.getInt()));
    }

    public VringAddressDescription vringAddress() {
        ByteBuffer b = exactly(VRING_ADDRESS_SIZE, "a vring address");
        // "Vring address description": index, flags, then descriptor, used and available ring addresses, then the log
        return new VringAddressDescription(b.getInt(), b.getInt(), new VringAddress(b.getLong(), b.getLong(), b.getLong()), b.getLong());
    }

    /**
     * The memory regions description. The size field must cover the regions it announces and may
     * not go beyond the full 8-region structure (some front-ends send all of it).
     */
    public List<Region> memoryTable() {
        if (payload.length < MEMORY_TABLE_HEADER_SIZE) {
            throw new VhostUserFramingException(name() + " has a " + payload.length
                    + "-byte payload, shorter than the 8-byte memory table header");
        }
        ByteBuffer b = ByteBuffer.wrap(payload).order(ORDER);
        long count = Integer.toUnsignedLong(b.getInt());
        b.getInt();
        if (count > MAX_MEMORY_REGIONS) {
            throw new VhostUserException(name() + " announces " + count + " memory regions; at most " + MAX_MEMORY_REGIONS
                    + " are allowed without CONFIGURE_MEM_SLOTS");
        }
        long need = MEMORY_TABLE_HEADER_SIZE + MEMORY_REGION_SIZE * count;
        long full = MEMORY_TABLE_HEADER_SIZE + (long) MEMORY_REGION_SIZE * MAX_MEMORY_REGIONS;
        if (payload.length < need || payload.length > full) {
            throw new VhostUserFramingException(name() + " announces " + count + " regions (" + need + " bytes) but its size field says "
                    + payload.length + " bytes");
        }
        List<Region> regions = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            regions.add(new Region(b.getLong(), b.getLong(), b.getLong(), b.getLong()));
        }
        return regions;
    }

    @Override
    public String toString() {
        return name() + "{flags=0x" + Integer.toHexString(flags) + ", size=" + payload.length + ", fds=" + fds.length + "}";
    }
}
