package io.vmm4j.virtio.driver.queue;

import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.PackedQueue;
import io.vmm4j.virtio.queue.PackedRing;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ConcurrentRingTest} on a packed ring of a size that is not a power of two: the driver and
 * the device on two threads, each sleeping when it has nothing to do and woken only by the
 * notifications the other decides to send (§2.8.10, §2.8.21.2, §2.8.22). A lost kick or interrupt
 * leaves both asleep and the test times out; a buffer seen out of order, twice, or with wrong
 * contents fails it. With IN_ORDER the driver reaps batches and checks every buffer they cover.
 */
class PackedConcurrentRingTest {
    private static final int CHAINS = 20_000;
    private static final int SIZE = 13;
    private static final long WAIT_SECONDS = 5;

    @ParameterizedTest(name = "eventIdx={0}, inOrder={1}")
    @CsvSource({"false,false", "true,false", "false,true", "true,true"})
    @Timeout(60)
    void everyBufferCrossesOnceWithOnlyTheNotificationsTheRingAsksFor(boolean eventIdx, boolean inOrder) throws Exception {
        try (PackedQueuePair q = new PackedQueuePair(SIZE, eventIdx, inOrder)) {
            long[] requests = new long[SIZE];
            long[] replies = new long[SIZE];
            for (int i = 0; i < SIZE; i++) {
                requests[i] = q.buffer(8);
                replies[i] = q.buffer(8);
            }
            Semaphore kicks = new Semaphore(0);
            Semaphore interrupts = new Semaphore(0);
            AtomicReference<Throwable> deviceFailure = new AtomicReference<>();
            Thread device = Thread.ofPlatform().name("packed-device").start(() -> {
                try {
                    runDevice(q, kicks, interrupts);
                } catch (Throwable t) {
                    deviceFailure.set(t);
                    interrupts.release();
                }
            });

            int[] sequenceOfId = new int[SIZE];
            int sent = 0;
            int received = 0;
            byte[] reply = new byte[8];
            while (received < CHAINS) {
                boolean added = false;
                while (sent < CHAINS && sent - received < SIZE && q.driver.freeSlots() >= 2) {
                    int slot = sent % SIZE;
                    q.memory.writeLong(requests[slot], sent);
                    int id = q.driver.add(new long[] {requests[slot], replies[slot]}, new int[] {8, 8}, 1);
                    assertTrue(id >= 0);
                    sequenceOfId[id] = sent++;
                    added = true;
                }
                if (added && q.driver.needsKick()) {
                    kicks.release();
                }
                PackedDriverRing.Used used = q.driver.pollUsed();
                if (used == null && eventIdx) {
                    // §2.8.22: ask for an interrupt at the next used slot, then look once more
                    q.driver.driverEvent(q.driver.usedPosition(), PackedRing.RING_EVENT_FLAGS_DESC);
                    VarHandle.fullFence();
                    used = q.driver.pollUsed();
                }
                if (used == null) {
                    if (!interrupts.tryAcquire(WAIT_SECONDS, TimeUnit.SECONDS)) {
                        throw new AssertionError("driver waited " + WAIT_SECONDS + " s for an interrupt after " + received
                                + " buffers: a notification was lost; " + q.device);
                    }
                    if (deviceFailure.get() != null) {
                        throw new AssertionError("the device thread failed", deviceFailure.get());
                    }
                    continue;
                }
                int last = sequenceOfId[used.id()];
                assertTrue(inOrder ? last >= received : last == received,
                        "buffer " + last + " came back when " + received + " was next: each once, in order");
                assertEquals(8, used.length());
                for (int sequence = received; sequence <= last; sequence++) {
                    q.memory.read(replies[sequence % SIZE], reply, 0, 8);
                    assertEquals(~(long) sequence, ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN).getLong(),
                            "reply to buffer " + sequence);
                }
                received = last + 1;
            }
            device.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
            assertFalse(device.isAlive(), "the device thread finished");
            if (deviceFailure.get() != null) {
                throw new AssertionError("the device thread failed", deviceFailure.get());
            }
            assertEquals(q.driver.usedPosition(), q.device.nextUsed());
            assertEquals(q.driver.availPosition(), q.device.nextAvail());
            q.guest.assertCanariesIntact();
        }
    }

    /** The device loop a backend runs: disable, drain, publish, notify, re-enable, sleep only if still empty. */
    private static void runDevice(PackedQueuePair q, Semaphore kicks, Semaphore interrupts) throws InterruptedException {
        PackedQueue queue = q.device;
        DescriptorChain chain = new DescriptorChain(queue.maxChainSegments());
        byte[] request = new byte[8];
        byte[] reply = new byte[8];
        int processed = 0;
        while (processed < CHAINS) {
            queue.disableNotifications();
            while (queue.pop(chain)) {
                if (chain.copyFromReadable(q.memory, 0, request, 0, 8) != 8) {
                    throw new AssertionError("request of buffer " + chain.head() + " is short: " + chain);
                }
                long sequence = ByteBuffer.wrap(request).order(ByteOrder.LITTLE_ENDIAN).getLong();
                ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN).putLong(0, ~sequence);
                chain.copyToWritable(q.memory, 0, reply, 0, 8);
                queue.push(chain.head(), 8);
                processed++;
            }
            queue.publish();
            if (queue.needsNotification()) {
                interrupts.release();
            }
            if (processed == CHAINS || queue.enableNotifications()) {
                continue;
            }
            if (!kicks.tryAcquire(WAIT_SECONDS, TimeUnit.SECONDS)) {
                throw new AssertionError("device waited " + WAIT_SECONDS + " s for a kick after " + processed
                        + " buffers: a kick was lost; " + queue);
            }
        }
    }
}
