package io.vmm4j.vhost.user;

import io.vmm4j.core.event.EventFd;
import io.vmm4j.core.linux.LibC;
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

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The guest half of a vhost-user test, without a transport: guest memory made of two regions that
 * share one memfd at different offsets (as QEMU's RAM below and above a hole), one queue pair driven
 * by {@link DriverQueue}s, and the kick and call eventfds a transport would own.
 */
final class TestGuest implements AutoCloseable {
    static final String MEMFD_NAME = "vmm4j-vu-test";
    /** Buffers: guest-physical 0, 4 MiB, at fd offset 8 MiB. */
    static final long LOW = 0;
    static final long LOW_SIZE = 4L << 20;
    static final long LOW_FD_OFFSET = 8L << 20;
    /** Rings: guest-physical 256 MiB, 8 MiB, at fd offset 0. */
    static final long HIGH = 0x1000_0000L;
    static final long HIGH_SIZE = 8L << 20;
    static final int QUEUE_SIZE = 256;
    static final int BUFFER = 2048;

    final GuestMemory memory;
    final GuestAllocator buffers = new GuestAllocator(LOW + 0x1000, LOW_SIZE - 0x1000);
    final GuestAllocator rings = new GuestAllocator(HIGH, HIGH_SIZE);
    final DriverQueue rx;
    final DriverQueue tx;
    final EventFd rxKick = EventFd.create();
    final EventFd rxCall = EventFd.create();
    final EventFd txKick = EventFd.create();
    final EventFd txCall = EventFd.create();
    final QueueBinding rxBinding;
    final QueueBinding txBinding;
    final List<NetQueueCounters> vmmCounters = List.of(new NetQueueCounters(0, "rx"), new NetQueueCounters(1, "tx"));
    final List<String> deviceErrors = new CopyOnWriteArrayList<>();
    private final long[] rxBufferOf = new long[QUEUE_SIZE];

    TestGuest(boolean eventIdx) {
        this(eventIdx, true);
    }

    /** @param sealed whether the memfd is sealed against shrinking and growing (QEMU's memory-backend-memfd), or not (DPDK's) */
    TestGuest(boolean eventIdx, boolean sealed) {
        int fd = LibC.memfdCreate(MEMFD_NAME, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING);
        LibC.ftruncate(fd, LOW_FD_OFFSET + LOW_SIZE);
        if (sealed) {
            LibC.fcntl(fd, LibC.F_ADD_SEALS, LibC.F_SEAL_SHRINK | LibC.F_SEAL_GROW);
        }
        memory = GuestMemory.builder().region(LOW, LOW_SIZE, fd, LOW_FD_OFFSET).region(HIGH, HIGH_SIZE, fd, 0).build();
        rx = new DriverQueue(memory, rings, QUEUE_SIZE, eventIdx);
        tx = new DriverQueue(memory, rings, QUEUE_SIZE, eventIdx);
        rxBinding = new QueueBinding(0, QUEUE_SIZE, rx.descTable(), rx.availRing(), rx.usedRing(), eventIdx, memory, rxKick, rxCall,
                false, rxCall::signal);
        txBinding = new QueueBinding(1, QUEUE_SIZE, tx.descTable(), tx.availRing(), tx.usedRing(), eventIdx, memory, txKick, txCall,
                false, txCall::signal);
    }

    NetActivation activation(long acked, QueuePositions resume) {
        VirtioDeviceHost host = new RecordingDeviceHost(deviceErrors);
        return new NetActivation(memory, acked, 1500, List.of(new NetActivation.QueuePair(0, rxBinding, txBinding)), 1, resume,
                vmmCounters, host);
    }

    /** The memfd behind both regions. */
    int memfd() {
        return memory.regions().getFirst().fd();
    }

    /** Puts one frame (behind a zeroed 12-byte header, in one buffer) on the transmit ring and kicks if asked to. */
    void transmit(byte[] frame) {
        long buf = buffers.allocate(BUFFER, 16);
        memory.fill(buf, VirtioNetHeader.SIZE, (byte) 0);
        memory.write(buf + VirtioNetHeader.SIZE, frame, 0, frame.length);
        if (tx.add(new long[] {buf}, new int[] {VirtioNetHeader.SIZE + frame.length}, 1) < 0) {
            throw new IllegalStateException("transmit ring full");
        }
        tx.publish();
        if (tx.needsKick()) {
            txKick.signal();
        }
    }

    /** Posts {@code n} receive buffers and kicks if asked to. */
    void postReceiveBuffers(int n) {
        for (int i = 0; i < n; i++) {
            long buf = buffers.allocate(BUFFER, 16);
            int head = rx.add(new long[] {buf}, new int[] {BUFFER}, 0);
            rxBufferOf[head] = buf;
        }
        rx.publish();
        if (rx.needsKick()) {
            rxKick.signal();
        }
    }

    /** The next received frame (header stripped), waiting up to {@code millis} for the call eventfd. */
    byte[] awaitReceived(long millis) {
        long deadline = System.currentTimeMillis() + millis;
        while (true) {
            DriverQueue.Used used = rx.pollUsed();
            if (used != null) {
                byte[] frame = new byte[used.length() - VirtioNetHeader.SIZE];
                memory.read(rxBufferOf[used.head()] + VirtioNetHeader.SIZE, frame, 0, frame.length);
                return frame;
            }
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                return null;
            }
            rxCall.await((int) Math.min(left, 50));
        }
    }

    /** Transmit chains the device has returned so far, waiting up to {@code millis} for {@code n} of them. */
    int awaitTransmitted(int n, long millis) {
        long deadline = System.currentTimeMillis() + millis;
        int done = 0;
        while (done < n) {
            while (tx.pollUsed() != null) {
                done++;
            }
            long left = deadline - System.currentTimeMillis();
            if (done >= n || left <= 0) {
                break;
            }
            txCall.await((int) Math.min(left, 50));
        }
        return done;
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
