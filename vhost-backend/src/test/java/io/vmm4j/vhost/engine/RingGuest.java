package io.vmm4j.vhost.engine;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.memory.GuestAllocator;
import io.vmm4j.core.memory.GuestMemory;
import io.vmm4j.vhost.RecordingDeviceHost;
import io.vmm4j.virtio.QueueBinding;
import io.vmm4j.virtio.VirtioDeviceHost;
import io.vmm4j.virtio.driver.DriverQueue;
import io.vmm4j.virtio.net.NetActivation;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.net.QueuePositions;
import io.vmm4j.virtio.net.VirtioNetHeader;
import io.vmm4j.virtio.queue.SplitRing;

import java.io.ByteArrayOutputStream;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The guest half of an engine test, without a transport: memfd-backed guest memory, one queue pair
 * driven by {@link DriverQueue}s of any size, the kick and call eventfds a transport would own, and
 * receive buffers of any length, writable or not, so a test can post what a hostile driver posts.
 */
final class RingGuest implements AutoCloseable {
    private static final long MEMORY = 32L << 20;

    final GuestMemory memory = GuestMemory.builder().region(0, MEMORY).build();
    final GuestAllocator rings = new GuestAllocator(0x1000, (1L << 20) - 0x1000);
    final GuestAllocator buffers = new GuestAllocator(1L << 20, MEMORY - (1L << 20));
    final DriverQueue rx;
    final DriverQueue tx;
    final EventFd rxKick = EventFd.create();
    final EventFd rxCall = EventFd.create();
    final EventFd txKick = EventFd.create();
    final EventFd txCall = EventFd.create();
    final List<NetQueueCounters> counters = List.of(new NetQueueCounters(0, "rx"), new NetQueueCounters(1, "tx"));
    final List<String> deviceErrors = new CopyOnWriteArrayList<>();
    private final QueueBinding rxBinding;
    private final QueueBinding txBinding;
    private final long[] rxBufferOf;
    private final int[] rxLengthOf;

    RingGuest(int queueSize, boolean eventIdx) {
        rx = new DriverQueue(memory, rings, queueSize, eventIdx);
        tx = new DriverQueue(memory, rings, queueSize, eventIdx);
        rxBinding = new QueueBinding(0, queueSize, rx.descTable(), rx.availRing(), rx.usedRing(), eventIdx, memory, rxKick, rxCall,
                false, rxCall::signal);
        txBinding = new QueueBinding(1, queueSize, tx.descTable(), tx.availRing(), tx.usedRing(), eventIdx, memory, txKick, txCall,
                false, txCall::signal);
        rxBufferOf = new long[queueSize];
        rxLengthOf = new int[queueSize];
    }

    NetActivation activation(long acked) {
        VirtioDeviceHost host = new RecordingDeviceHost(deviceErrors);
        return new NetActivation(memory, acked, 1500, List.of(new NetActivation.QueuePair(0, rxBinding, txBinding)), 1,
                QueuePositions.zero(2), counters, host);
    }

    NetQueueCounters rxCounters() {
        return counters.getFirst();
    }

    /** Adds one receive buffer of {@code length} bytes (device-writable or, if a driver misbehaves, device-readable) without publishing. */
    void addReceiveBuffer(int length, boolean writable) {
        long buf = buffers.allocate(Math.max(length, 1), 16);
        int head = rx.add(new long[] {buf}, new int[] {length}, writable ? 0 : 1);
        if (head < 0) {
            throw new IllegalStateException("receive ring full");
        }
        rxBufferOf[head] = buf;
        rxLengthOf[head] = length;
    }

    /** Adds {@code n} writable receive buffers of {@code length} bytes, publishes them and kicks if the device asks for it. */
    void postReceiveBuffers(int n, int length) {
        for (int i = 0; i < n; i++) {
            addReceiveBuffer(length, true);
        }
        publishReceiveBuffers();
    }

    void publishReceiveBuffers() {
        rx.publish();
        if (rx.needsKick()) {
            rxKick.signal();
        }
    }

    /** Re-posts the buffer of a used head (same address and length), unpublished. */
    void repost(int head) {
        long buf = rxBufferOf[head];
        int length = rxLengthOf[head];
        int again = rx.add(new long[] {buf}, new int[] {length}, 0);
        rxBufferOf[again] = buf;
        rxLengthOf[again] = length;
    }

    /** A received frame: its bytes (header stripped) and how many buffers it spanned. */
    record Frame(byte[] bytes, int numBuffers) {
    }

    /**
     * The next received frame if its buffers are all in the used ring, reassembled from
     * {@code num_buffers} buffers; null if none. With {@code repost}, the buffers go back unpublished.
     */
    Frame pollFrame(boolean repost) {
        DriverQueue.Used first = rx.pollUsed();
        if (first == null) {
            return null;
        }
        byte[] header = new byte[VirtioNetHeader.SIZE];
        memory.read(rxBufferOf[first.head()], header, 0, header.length);
        int numBuffers = (header[VirtioNetHeader.NUM_BUFFERS] & 0xFF) | (header[VirtioNetHeader.NUM_BUFFERS + 1] & 0xFF) << 8;
        ByteArrayOutputStream frame = new ByteArrayOutputStream();
        DriverQueue.Used used = first;
        for (int i = 0; i < numBuffers; i++) {
            if (i > 0) {
                used = rx.pollUsed();
                if (used == null) {
                    throw new AssertionError("num_buffers is " + numBuffers + " but only " + i + " buffers were used together"
                            + " (virtio 1.2 §5.1.6.4: the device uses them all at once)");
                }
            }
            byte[] b = new byte[used.length()];
            memory.read(rxBufferOf[used.head()], b, 0, b.length);
            frame.write(b, 0, b.length);
            if (repost) {
                repost(used.head());
            }
        }
        byte[] all = frame.toByteArray();
        return new Frame(java.util.Arrays.copyOfRange(all, VirtioNetHeader.SIZE, all.length), numBuffers);
    }

    /** The next received frame, waiting up to {@code millis} on the call eventfd; null if none came. */
    Frame awaitFrame(long millis) {
        long deadline = System.currentTimeMillis() + millis;
        while (true) {
            Frame f = pollFrame(false);
            if (f != null) {
                return f;
            }
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                return null;
            }
            rxCall.await((int) Math.min(left, 50));
        }
    }

    /** The used idx the device published on the receive ring. */
    int rxUsedIdx() {
        return SplitRing.usedIdx(memory, rx.usedRing());
    }

    @Override
    public void close() {
        rxKick.close();
        rxCall.close();
        txKick.close();
        txCall.close();
        memory.close();
    }
}
