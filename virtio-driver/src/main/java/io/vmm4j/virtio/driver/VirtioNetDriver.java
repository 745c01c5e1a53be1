package io.vmm4j.virtio.driver;

import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.net.VirtioNetHeader;
import io.vmm4j.virtio.pci.MsixTable;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * A guest-side virtio-net driver on top of {@link VirtioPciDriver}, in the spirit of Linux's
 * virtio_net: negotiates features, sets up receive/transmit pairs and the control queue with one
 * MSI-X vector each, keeps the receive queues full of buffers, sends frames as a header
 * descriptor followed by a payload descriptor, and reassembles mergeable receive buffers. The
 * queues are packed rings when VIRTIO_F_RING_PACKED is negotiated (ask for it in the wanted
 * features), split ones otherwise ({@link VirtioPciDriver#setupVirtqueue}).
 * Single-threaded: the guest's vCPU thread calls everything.
 */
public final class VirtioNetDriver {
    /** Receives a whole Ethernet frame (header stripped); {@code numBuffers} is how many buffers it spanned. */
    @FunctionalInterface
    public interface FrameHandler {
        void frame(int pair, byte[] frame, int length, int numBuffers);
    }

    /** How the driver wants its queues. */
    public record Options(long wantedFeatures, int pairs, int rxBufferSize, int rxBuffersPerQueue, int firstVector) {
    }

    private static final int CONTROL_TIMEOUT_MS = 10_000;

    private final VirtioPciDriver pci;
    private final GuestMemory memory;
    private final GuestAllocator allocator;
    private final GuestLocalApic apic;
    private final List<RxQueue> rx = new ArrayList<>();
    private final List<TxQueue> tx = new ArrayList<>();
    private DriverVirtqueue control;
    private long controlNotify;
    private int controlIndex;
    private long controlBuffer;
    private long acked;
    private int maxFrame;
    private byte[] assembly;
    private long framesIn;
    private long framesOut;

    private final class RxQueue {
        final int pair;
        final DriverVirtqueue queue;
        final long notify;
        final long[] bufferOf;
        final int bufferSize;
        final long[] addrs = new long[1];
        final int[] lens = new int[1];

        RxQueue(int pair, DriverVirtqueue queue, long notify, int bufferSize) {
            this.pair = pair;
            this.queue = queue;
            this.notify = notify;
            this.bufferOf = new long[queue.size()];
            this.bufferSize = bufferSize;
            this.lens[0] = bufferSize;
        }

        void post(long buffer) {
            addrs[0] = buffer;
            int head = queue.add(addrs, lens, 0);
            if (head < 0) {
                // a buffer is only re-posted after the device returned it, so its descriptors are free
                throw new IllegalStateException("receive queue " + 2 * pair + " has no free descriptor for a returned buffer: " + queue);
            }
            bufferOf[head] = buffer;
        }
    }

    private final class TxQueue {
        final int index;
        final DriverVirtqueue queue;
        final long notify;
        final ArrayDeque<long[]> free = new ArrayDeque<>();
        final long[] addrs = new long[2];
        final int[] lens = new int[2];
        final long[][] slotOfHead;

        TxQueue(int index, DriverVirtqueue queue, long notify, int slots, int slotSize) {
            this.index = index;
            this.queue = queue;
            this.notify = notify;
            this.slotOfHead = new long[queue.size()][];
            for (int i = 0; i < slots; i++) {
                free.add(new long[] {allocator.allocate(VirtioNetHeader.SIZE, 16), allocator.allocate(slotSize, 16)});
            }
        }

        void reclaim() {
            int head;
            while ((head = queue.pollUsedHead()) >= 0) {
                free.add(slotOfHead[head]);
                slotOfHead[head] = null;
            }
        }
    }

    public VirtioNetDriver(VirtioPciDriver pci, GuestMemory memory, GuestAllocator allocator, GuestLocalApic apic) {
        this.pci = pci;
        this.memory = memory;
        this.allocator = allocator;
        this.apic = apic;
    }

    public VirtioPciDriver pci() {
        return pci;
    }

    public long acked() {
        return acked;
    }

    public boolean has(int feature) {
        return VirtioFeatures.has(acked, feature);
    }

    public int pairs() {
        return rx.size();
    }

    /**
     * Where the driver will read the next used buffer on pair {@code pair}'s receive queue (how far the
     * ring has gone since setup): a used idx on a split ring, offset and wrap counter on a packed one.
     */
    public int rxUsedIndex(int pair) {
        return rx.get(pair).queue.lastUsed();
    }

    public long framesIn() {
        return framesIn;
    }

    public long framesOut() {
        return framesOut;
    }

    /** The MAC in the device configuration (with VIRTIO_NET_F_MAC). */
    public byte[] mac() {
        byte[] mac = new byte[6];
        for (int i = 0; i < 6; i++) {
            mac[i] = (byte) pci.readDeviceConfig(VirtioNet.CONFIG_MAC + i, 1);
        }
        return mac;
    }

    public boolean linkUp() {
        return !has(NetFeatures.STATUS) || (pci.readDeviceConfig(VirtioNet.CONFIG_STATUS, 2) & VirtioNet.STATUS_LINK_UP) != 0;
    }

    public int mtu() {
        return has(NetFeatures.MTU) ? (int) pci.readDeviceConfig(VirtioNet.CONFIG_MTU, 2) : 1500;
    }

    /** Whether the queues are packed rings (VIRTIO_F_RING_PACKED was negotiated). */
    public boolean packedRings() {
        return has(VirtioFeatures.RING_PACKED);
    }

    /** The size of pair {@code pair}'s receive queue and transmit queue. */
    public int rxQueueSize(int pair) {
        return rx.get(pair).queue.size();
    }

    public int txQueueSize(int pair) {
        return tx.get(pair).queue.size();
    }

    public int maxQueuePairs() {
        return has(NetFeatures.MQ) ? (int) pci.readDeviceConfig(VirtioNet.CONFIG_MAX_PAIRS, 2) : 1;
    }

    /**
     * Brings the NIC up (§5.1.5): features, MSI-X (vector 0 config, then one per queue), queues,
     * receive buffers, DRIVER_OK, and with several pairs the MQ command. Returns the acked features.
     */
    public long bringUp(Options o) {
        acked = pci.negotiate(o.wantedFeatures());
        int maxPairs = maxQueuePairs();
        int pairs = Math.min(o.pairs(), maxPairs);
        boolean ctrl = has(NetFeatures.CTRL_VQ);
        int vectors = 1 + 2 * pairs + (ctrl ? 1 : 0);
        pci.enableMsix(Math.min(vectors, pci.msixVectors()), o.firstVector());
        pci.setConfigVector(0);
        boolean gso = has(NetFeatures.GUEST_TSO4) || has(NetFeatures.GUEST_TSO6) || has(NetFeatures.GUEST_UFO);
        maxFrame = gso ? 65535 + 18 : mtu() + 18;
        assembly = new byte[VirtioNetHeader.SIZE + maxFrame];
        int rxBufferSize = has(NetFeatures.MRG_RXBUF) ? o.rxBufferSize() : VirtioNetHeader.SIZE + maxFrame;
        for (int p = 0; p < pairs; p++) {
            int rxVector = vectorFor(1 + 2 * p);
            int txVector = vectorFor(2 + 2 * p);
            DriverVirtqueue rq = pci.setupVirtqueue(2 * p, 0, rxVector);
            DriverVirtqueue tq = pci.setupVirtqueue(2 * p + 1, 0, txVector);
            RxQueue r = new RxQueue(p, rq, pci.notifyAddress(2 * p), rxBufferSize);
            int buffers = Math.min(o.rxBuffersPerQueue(), rq.size());
            for (int i = 0; i < buffers; i++) {
                r.post(allocator.allocate(rxBufferSize, 16));
            }
            rq.publish();
            rx.add(r);
            // this guest never builds GSO frames: a transmit slot holds one MTU-sized frame
            tx.add(new TxQueue(2 * p + 1, tq, pci.notifyAddress(2 * p + 1), Math.min(tq.size(), 32), mtu() + 18));
        }
        if (ctrl) {
            control = pci.setupVirtqueue(2 * maxPairs, 0, vectorFor(1 + 2 * pairs));
            controlNotify = pci.notifyAddress(2 * maxPairs);
            controlIndex = 2 * maxPairs;
            controlBuffer = allocator.allocate(4096, 16);
        }
        pci.driverOk();
        for (RxQueue r : rx) {
            pci.kick(r.notify, 2 * r.pair);
        }
        if (pairs > 1) {
            setQueuePairs(pairs);
        }
        return acked;
    }

    private int vectorFor(int vector) {
        return vector < pci.msixVectors() ? vector : MsixTable.NO_VECTOR;
    }

    /** Whether a frame can be queued on {@code pair} now (reaping what the device finished first). */
    public boolean canTransmit(int pair) {
        TxQueue t = tx.get(pair);
        t.reclaim();
        return !t.free.isEmpty();
    }

    /** Sends one Ethernet frame on {@code pair}: a 12-byte header descriptor, then the payload descriptor. */
    public boolean transmit(int pair, byte[] frame, int offset, int length) {
        TxQueue t = tx.get(pair);
        t.reclaim();
        long[] slot = t.free.poll();
        if (slot == null || length > mtu() + 18) {
            return false;
        }
        memory.fill(slot[0], VirtioNetHeader.SIZE, (byte) 0);
        memory.write(slot[1], frame, offset, length);
        t.addrs[0] = slot[0];
        t.addrs[1] = slot[1];
        t.lens[0] = VirtioNetHeader.SIZE;
        t.lens[1] = length;
        int head = t.queue.add(t.addrs, t.lens, 2);
        if (head < 0) {
            t.free.add(slot);
            return false;
        }
        t.slotOfHead[head] = slot;
        t.queue.publish();
        if (t.queue.needsKick()) {
            pci.kick(t.notify, t.index);
        }
        framesOut++;
        return true;
    }

    /** Handles every received frame and recycles its buffers; returns how many frames were delivered. */
    public int pollReceive(FrameHandler handler) {
        int delivered = 0;
        for (RxQueue r : rx) {
            boolean reposted = false;
            int head;
            while ((head = r.queue.pollUsedHead()) >= 0) {
                long buffer = r.bufferOf[head];
                int len = r.queue.lastUsedLength();
                memory.read(buffer, assembly, 0, Math.min(len, assembly.length));
                int numBuffers = has(NetFeatures.MRG_RXBUF) ? (assembly[VirtioNetHeader.NUM_BUFFERS] & 0xFF)
                        | (assembly[VirtioNetHeader.NUM_BUFFERS + 1] & 0xFF) << 8 : 1;
                int total = len;
                r.post(buffer);
                reposted = true;
                for (int i = 1; i < numBuffers; i++) {
                    int more = r.queue.pollUsedHead();
                    if (more < 0) {
                        throw new IllegalStateException("num_buffers " + numBuffers + " but only " + i + " buffers used");
                    }
                    long b = r.bufferOf[more];
                    int n = Math.min(r.queue.lastUsedLength(), assembly.length - total);
                    memory.read(b, assembly, total, n);
                    total += n;
                    r.post(b);
                }
                framesIn++;
                delivered++;
                byte[] frame = java.util.Arrays.copyOfRange(assembly, VirtioNetHeader.SIZE, total);
                handler.frame(r.pair, frame, frame.length, numBuffers);
            }
            if (reposted) {
                r.queue.publish();
                if (r.queue.needsKick()) {
                    pci.kick(r.notify, 2 * r.pair);
                }
            }
        }
        for (TxQueue t : tx) {
            t.reclaim();
        }
        return delivered;
    }

    /** Interrupts seen so far, for {@link #awaitInterrupt}. */
    public long interruptsSeen() {
        return apic.total();
    }

    /** Waits for any interrupt after {@code seen}; returns the new count. */
    public long awaitInterrupt(long seen, long timeoutNanos) throws InterruptedException {
        return apic.awaitAny(seen, timeoutNanos);
    }

    /** VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET; returns the ack (0 = OK). */
    public int setQueuePairs(int pairs) {
        return controlCommand(VirtioNet.CLASS_MQ, VirtioNet.MQ_VQ_PAIRS_SET, new byte[] {(byte) pairs, (byte) (pairs >> 8)});
    }

    /** VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET with GUEST_* feature bits; returns the ack. */
    public int setGuestOffloads(long offloads) {
        byte[] data = new byte[8];
        for (int i = 0; i < 8; i++) {
            data[i] = (byte) (offloads >>> (8 * i));
        }
        return controlCommand(VirtioNet.CLASS_GUEST_OFFLOADS, VirtioNet.GUEST_OFFLOADS_SET, data);
    }

    /** VIRTIO_NET_CTRL_RX promiscuous / all-multicast; returns the ack. */
    public int setRxMode(int command, boolean on) {
        return controlCommand(VirtioNet.CLASS_RX, command, new byte[] {(byte) (on ? 1 : 0)});
    }

    /**
     * Sends a control command (§5.1.6.5): class and command, data, then a device-writable ack byte;
     * waits for the device to use it. Returns the ack, or -1 on timeout.
     */
    public int controlCommand(int cls, int cmd, byte[] data) {
        if (control == null) {
            throw new IllegalStateException("the control queue was not negotiated (CTRL_VQ)");
        }
        memory.writeByte(controlBuffer, (byte) cls);
        memory.writeByte(controlBuffer + 1, (byte) cmd);
        memory.write(controlBuffer + 2, data, 0, data.length);
        long ack = controlBuffer + 2 + data.length;
        memory.writeByte(ack, (byte) 0xFF);
        int head = data.length == 0
                ? control.add(new long[] {controlBuffer, ack}, new int[] {2, 1}, 1)
                : control.add(new long[] {controlBuffer, controlBuffer + 2, ack}, new int[] {2, data.length, 1}, 2);
        DriverVirtqueue.Used used = submitControl(head);
        return used == null ? -1 : memory.readByte(ack) & 0xFF;
    }

    /**
     * A control chain of any shape, for tests of a device's framing rules (§5.1.6.5 breaks on
     * purpose): {@code readable} split over {@code readableSegments} descriptors (some may be empty),
     * then {@code writableLength} bytes, filled with 0xFF, over {@code writableSegments}. Waits for the
     * device to use it; returns the used element (its length is what the device says it wrote) or
     * null on timeout. The writable bytes start at {@link #controlWritable()}.
     */
    public DriverVirtqueue.Used controlChain(byte[] readable, int readableSegments, int writableLength, int writableSegments) {
        if (control == null) {
            throw new IllegalStateException("the control queue was not negotiated (CTRL_VQ)");
        }
        if (readable.length > CONTROL_RAW_HALF || writableLength > CONTROL_RAW_HALF || readableSegments + writableSegments < 1
                || readableSegments < 0 || writableSegments < 0 || readableSegments + writableSegments > 8) {
            throw new IllegalArgumentException("a raw control chain holds at most " + CONTROL_RAW_HALF
                    + " readable and writable bytes each, in 1..8 segments");
        }
        memory.write(controlBuffer, readable, 0, readable.length);
        memory.fill(controlWritable(), Math.max(1, writableLength), (byte) 0xFF);
        int n = readableSegments + writableSegments;
        long[] addrs = new long[n];
        int[] lens = new int[n];
        split(controlBuffer, readable.length, readableSegments, addrs, lens, 0);
        split(controlWritable(), writableLength, writableSegments, addrs, lens, readableSegments);
        int head = control.add(addrs, lens, readableSegments);
        return submitControl(head);
    }

    /** Where {@link #controlChain}'s writable bytes start. */
    public long controlWritable() {
        return controlBuffer + CONTROL_RAW_HALF;
    }

    private static final int CONTROL_RAW_HALF = 2048;

    /** {@code length} bytes from {@code base} over {@code segments} consecutive pieces; the last takes the rest. */
    private static void split(long base, int length, int segments, long[] addrs, int[] lens, int first) {
        int piece = segments == 0 ? 0 : length / segments;
        for (int i = 0; i < segments; i++) {
            addrs[first + i] = base + (long) i * piece;
            lens[first + i] = i == segments - 1 ? length - i * piece : piece;
        }
    }

    /** Publishes chain {@code head}, kicks, and waits for the device to use it; null on timeout. */
    private DriverVirtqueue.Used submitControl(int head) {
        control.publish();
        pci.kick(controlNotify, controlIndex);
        long deadline = System.nanoTime() + CONTROL_TIMEOUT_MS * 1_000_000L;
        while (System.nanoTime() < deadline) {
            DriverVirtqueue.Used used = control.pollUsed();
            if (used != null) {
                if (used.head() != head) {
                    throw new IllegalStateException("control queue returned head " + used.head() + ", expected " + head);
                }
                return used;
            }
            Thread.onSpinWait();
            try {
                Thread.sleep(0, 200_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null;
    }
}
