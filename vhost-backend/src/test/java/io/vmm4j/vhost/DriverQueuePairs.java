package io.vmm4j.vhost;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.virtio.QueueBinding;
import io.vmm4j.virtio.VirtioDeviceHost;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.driver.DriverVirtqueue;
import io.vmm4j.virtio.driver.PackedDriverQueue;
import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.net.QueuePositions;
import io.vmm4j.virtio.net.VirtioNetHeader;
import io.vmm4j.virtio.queue.RingLayout;
import io.vmm4j.virtio.queue.SplitRing;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The driver's side of a virtio-net device's data queues, without a transport: memfd-backed guest
 * memory (what every data plane can map, vhost-user included), {@code pairs} receive/transmit
 * {@link DriverQueue}s, the kick and call eventfds a transport would own, and the device's
 * counters. It speaks to a data plane only through the {@link NetActivation} it hands out, so any
 * {@code NetBackend} or the queue-pair engine can serve it.
 *
 * <p>Every buffer is {@link #BUFFER} bytes and recycled when the device returns it. Frames carry a
 * zeroed virtio_net_hdr_v1 in front (12 bytes, VERSION_1). Not thread-safe: one test thread drives it.
 */
@SuppressWarnings("exports") // a test fixture: the guest-side DriverQueue comes from the test class path
public final class DriverQueuePairs implements AutoCloseable {
    public static final int QUEUE_SIZE = 256;
    /** Room for a 1500-byte MTU frame and its header (with MRG_RXBUF one buffer holds it, no bounce). */
    public static final int BUFFER = 2048;
    private static final long MEMORY = 32L << 20;
    private static final long RINGS = 1L << 20;

    private final GuestMemory memory = GuestMemory.builder().region(0, MEMORY).build();
    private final GuestAllocator buffers = new GuestAllocator(RINGS, MEMORY - RINGS);
    private final boolean eventIdx;
    private final RingLayout layout;
    private final boolean synchronous;
    private final Pair[] pairs;
    private final List<NetQueueCounters> counters = new ArrayList<>();
    private final List<String> deviceErrors = new CopyOnWriteArrayList<>();
    private final ArrayDeque<Long> freeBuffers = new ArrayDeque<>();
    private final GuestAllocator rings = new GuestAllocator(0x1000, RINGS - 0x1000);

    /** One queue pair: its rings (replaced by a reset), doorbells (kept) and the buffer of each chain head in flight. */
    private final class Pair {
        final EventFd rxKick = EventFd.create();
        final EventFd rxCall = EventFd.create();
        final EventFd txKick = EventFd.create();
        final EventFd txCall = EventFd.create();
        final int index;
        DriverVirtqueue rx;
        DriverVirtqueue tx;
        QueueBinding rxBinding;
        QueueBinding txBinding;
        final long[] rxBufferOf = new long[QUEUE_SIZE];
        final long[] txBufferOf = new long[QUEUE_SIZE];

        Pair(int index) {
            this.index = index;
            newRings();
        }

        void newRings() {
            rx = newQueue();
            tx = newQueue();
            rxBinding = new QueueBinding(2 * index, QUEUE_SIZE, layout, false, rx.descriptorArea(), rx.driverArea(), rx.deviceArea(),
                    eventIdx, memory, rxKick, rxCall, synchronous, rxCall::signal);
            txBinding = new QueueBinding(2 * index + 1, QUEUE_SIZE, layout, false, tx.descriptorArea(), tx.driverArea(),
                    tx.deviceArea(), eventIdx, memory, txKick, txCall, synchronous, txCall::signal);
            Arrays.fill(rxBufferOf, -1);
            Arrays.fill(txBufferOf, -1);
        }

        void close() {
            rxKick.close();
            rxCall.close();
            txKick.close();
            txCall.close();
        }
    }

    private DriverVirtqueue newQueue() {
        return layout == RingLayout.PACKED ? new PackedDriverQueue(memory, rings, QUEUE_SIZE, eventIdx)
                : new DriverQueue(memory, rings, QUEUE_SIZE, eventIdx);
    }

    /** @param eventIdx whether the driver negotiated VIRTIO_F_EVENT_IDX (used_event / avail_event instead of flags) */
    public DriverQueuePairs(int pairs, boolean eventIdx) {
        this(pairs, eventIdx, RingLayout.SPLIT);
    }

    /** @param layout split rings, or packed ones (the features the test acks must then include VIRTIO_F_RING_PACKED) */
    public DriverQueuePairs(int pairs, boolean eventIdx, RingLayout layout) {
        this(pairs, eventIdx, layout, false);
    }

    /**
     * @param synchronous kicks as a transport without ioeventfds delivers them: the device's handler runs on the
     *                    kicking thread (the one driving this object), and its calls signal the call eventfds
     */
    public DriverQueuePairs(int pairs, boolean eventIdx, RingLayout layout, boolean synchronous) {
        this.eventIdx = eventIdx;
        this.layout = layout;
        this.synchronous = synchronous;
        this.pairs = new Pair[pairs];
        for (int p = 0; p < pairs; p++) {
            this.pairs[p] = new Pair(p);
            counters.add(new NetQueueCounters(2 * p, "rx"));
            counters.add(new NetQueueCounters(2 * p + 1, "tx"));
        }
    }

    public GuestMemory memory() {
        return memory;
    }

    public int pairs() {
        return pairs.length;
    }

    /** What the device hands a data plane at DRIVER_OK, or after a switch when {@code resume} is not zero. */
    public NetActivation activation(long ackedFeatures, int activePairs, QueuePositions resume) {
        VirtioDeviceHost host = new RecordingDeviceHost(deviceErrors);
        List<NetActivation.QueuePair> queues = new ArrayList<>();
        for (Pair p : pairs) {
            queues.add(new NetActivation.QueuePair(p.index, p.rxBinding, p.txBinding));
        }
        return new NetActivation(memory, ackedFeatures, 1500, queues, activePairs, resume, counters, host);
    }

    /** A fresh start after a device reset: {@code activePairs} of all pairs, from index 0. */
    public NetActivation activation(long ackedFeatures, int activePairs) {
        return activation(ackedFeatures, activePairs, QueuePositions.start(2 * pairs.length, layout));
    }

    /** The device's counters of virtqueue {@code queue} (rx of pair p is 2p, tx 2p + 1). */
    public NetQueueCounters counters(int queue) {
        return counters.get(queue);
    }

    /** Ring errors the data plane reported (DEVICE_NEEDS_RESET). */
    public List<String> deviceErrors() {
        return deviceErrors;
    }

    public DriverVirtqueue rx(int pair) {
        return pairs[pair].rx;
    }

    public DriverVirtqueue tx(int pair) {
        return pairs[pair].tx;
    }

    public EventFd txKick(int pair) {
        return pairs[pair].txKick;
    }

    /**
     * What a device reset does to the driver's side: the queues are set up again from index 0, in
     * new rings at new addresses, and whatever was in the old ones is forgotten. The doorbells stay
     * (they are the transport's).
     */
    public void reset() {
        for (Pair p : pairs) {
            p.newRings();
        }
        freeBuffers.clear();
    }

    private long buffer() {
        Long b = freeBuffers.poll();
        return b != null ? b : buffers.allocate(BUFFER, 16);
    }

    /** Puts {@code frame} behind a zeroed header into one buffer on pair {@code pair}'s transmit ring, publishes, kicks if asked. */
    public void transmit(int pair, byte[] frame) {
        queueTransmit(pair, frame);
        publishTransmit(pair);
    }

    /** Adds {@code frame} (behind a zeroed header) to the transmit ring without publishing it: for batches. */
    public void queueTransmit(int pair, byte[] frame) {
        long buf = buffer();
        memory.fill(buf, VirtioNetHeader.SIZE, (byte) 0);
        memory.write(buf + VirtioNetHeader.SIZE, frame, 0, frame.length);
        queueTransmitChain(pair, buf, VirtioNetHeader.SIZE + frame.length);
    }

    /** Puts one readable buffer of {@code length} bytes (whatever it holds) on the transmit ring and publishes it: for chains a device must refuse. */
    public void transmitBytes(int pair, int length) {
        queueTransmitChain(pair, buffer(), length);
        publishTransmit(pair);
    }

    private void queueTransmitChain(int pair, long buf, int length) {
        Pair p = pairs[pair];
        int head = p.tx.add(new long[] {buf}, new int[] {length}, 1);
        if (head < 0) {
            throw new IllegalStateException("transmit ring of pair " + pair + " is full");
        }
        p.txBufferOf[head] = buf;
    }

    /** Publishes what was queued on the transmit ring and kicks if the device asks for it (§2.7.13.4); returns whether it kicked. */
    public boolean publishTransmit(int pair) {
        Pair p = pairs[pair];
        p.tx.publish();
        boolean kick = p.tx.needsKick();
        if (kick) {
            kick(p.txBinding, p.txKick);
        }
        return kick;
    }

    /** Publishes what was queued on the transmit ring but never kicks; returns whether the device asked for a kick. */
    public boolean publishTransmitWithoutKick(int pair) {
        Pair p = pairs[pair];
        p.tx.publish();
        return p.tx.needsKick();
    }

    /** Takes back the transmit chains the device returned so far; returns how many. */
    public int reclaimTransmitted(int pair) {
        Pair p = pairs[pair];
        int n = 0;
        for (DriverVirtqueue.Used u; (u = p.tx.pollUsed()) != null; n++) {
            freeBuffers.push(p.txBufferOf[u.head()]);
            p.txBufferOf[u.head()] = -1;
        }
        return n;
    }

    /** Waits up to {@code millis} for the device to return {@code n} transmit chains; returns how many it returned. */
    public int awaitTransmitted(int pair, int n, long millis) {
        long deadline = System.currentTimeMillis() + millis;
        int done = reclaimTransmitted(pair);
        while (done < n) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                break;
            }
            pairs[pair].txCall.await((int) Math.min(left, 50));
            done += reclaimTransmitted(pair);
        }
        return done;
    }

    /** Posts {@code n} receive buffers on pair {@code pair}, publishes them and kicks if asked. */
    public void postReceiveBuffers(int pair, int n) {
        if (postReceiveBuffersWithoutKick(pair, n)) {
            kick(pairs[pair].rxBinding, pairs[pair].rxKick);
        }
    }

    /** The notify write: the kick eventfd (ioeventfd), or in synchronous mode the device's handler, run here. */
    private void kick(QueueBinding binding, EventFd kick) {
        if (synchronous) {
            binding.runSyncHandler();
        } else {
            kick.signal();
        }
    }

    /** Posts and publishes {@code n} receive buffers but never kicks; returns whether the device asked for a kick. */
    public boolean postReceiveBuffersWithoutKick(int pair, int n) {
        Pair p = pairs[pair];
        for (int i = 0; i < n; i++) {
            long buf = buffer();
            int head = p.rx.add(new long[] {buf}, new int[] {BUFFER}, 0);
            if (head < 0) {
                throw new IllegalStateException("receive ring of pair " + pair + " is full");
            }
            p.rxBufferOf[head] = buf;
        }
        p.rx.publish();
        return p.rx.needsKick();
    }

    /** The next received frame on pair {@code pair} (header stripped; buffer recycled, not re-posted), or null. */
    public byte[] pollReceived(int pair) {
        Pair p = pairs[pair];
        DriverVirtqueue.Used used = p.rx.pollUsed();
        if (used == null) {
            return null;
        }
        long buf = p.rxBufferOf[used.head()];
        p.rxBufferOf[used.head()] = -1;
        byte[] frame = new byte[Math.max(used.length() - VirtioNetHeader.SIZE, 0)];
        memory.read(buf + VirtioNetHeader.SIZE, frame, 0, frame.length);
        freeBuffers.push(buf);
        return frame;
    }

    /** The next received frame on pair {@code pair}, waiting up to {@code millis} on its call eventfd; null if none came. */
    public byte[] awaitReceived(int pair, long millis) {
        long deadline = System.currentTimeMillis() + millis;
        while (true) {
            byte[] f = pollReceived(pair);
            if (f != null) {
                return f;
            }
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                return null;
            }
            pairs[pair].rxCall.await((int) Math.min(left, 50));
        }
    }

    /** The used idx the device has published on virtqueue {@code queue}, read from guest memory (the driver takes nothing). */
    public int usedIdx(int queue) {
        Pair p = pairs[queue / 2];
        DriverVirtqueue ring = queue % 2 == 0 ? p.rx : p.tx;
        if (!(ring instanceof DriverQueue q)) {
            throw new IllegalStateException("a packed ring has no used idx in memory");
        }
        return Short.toUnsignedInt(memory.loadAcquireShort(q.usedRing() + SplitRing.RING_IDX));
    }

    @Override
    public void close() {
        for (Pair p : pairs) {
            p.close();
        }
        memory.close();
    }
}
