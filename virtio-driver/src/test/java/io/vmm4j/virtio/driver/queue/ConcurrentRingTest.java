package io.vmm4j.virtio.driver.queue;

import io.vmm4j.virtio.driver.DriverVirtqueue.Used;
import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.SplitQueue;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The driver and the device on two threads, each sleeping when it has nothing to do and woken only
 * by the notifications the other decides to send. A lost kick or a lost interrupt leaves both asleep
 * and the test times out; a chain seen out of order, twice, or with wrong contents fails it.
 */
class ConcurrentRingTest {
    private static final int CHAINS = 20_000;
    private static final int SIZE = 16;
    private static final long WAIT_SECONDS = 5;

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    @Timeout(30)
    void everyChainCrossesOnceWithOnlyTheNotificationsTheRingsAskFor(boolean eventIdx) throws Exception {
        try (QueuePair q = new QueuePair(SIZE, eventIdx)) {
            long[] requests = new long[SIZE];
            long[] replies = new long[SIZE];
            for (int i = 0; i < SIZE; i++) {
                requests[i] = q.buffer(8);
                replies[i] = q.buffer(8);
            }
            Semaphore kicks = new Semaphore(0);
            Semaphore interrupts = new Semaphore(0);
            AtomicReference<Throwable> deviceFailure = new AtomicReference<>();

            Thread device = Thread.ofPlatform().name("virtqueue-device").start(() -> {
                try {
                    runDevice(q, kicks, interrupts);
                } catch (Throwable t) {
                    deviceFailure.set(t);
                    interrupts.release();
                }
            });

            int[] sequenceOfHead = new int[SIZE];
            int sent = 0;
            int received = 0;
            byte[] reply = new byte[8];
            while (received < CHAINS) {
                boolean added = false;
                while (sent < CHAINS && q.driver.freeDescriptors() >= 2) {
                    int slot = sent % SIZE;
                    q.memory.writeLong(requests[slot], sent);
                    int head = q.driver.add(new long[] {requests[slot], replies[slot]}, new int[] {8, 8}, 1);
                    sequenceOfHead[head] = sent++;
                    added = true;
                }
                if (added) {
                    q.driver.publish();
                    if (q.driver.needsKick()) {
                        kicks.release();
                    }
                }
                Used used = q.driver.pollUsed();
                if (used == null) {
                    if (!interrupts.tryAcquire(WAIT_SECONDS, TimeUnit.SECONDS)) {
                        throw new AssertionError("driver waited " + WAIT_SECONDS + " s for an interrupt after "
                                + received + " chains: a notification was lost; " + q.driver + " / " + q.device);
                    }
                    if (deviceFailure.get() != null) {
                        throw new AssertionError("the device thread failed", deviceFailure.get());
                    }
                    continue;
                }
                int sequence = sequenceOfHead[used.head()];
                assertEquals(received, sequence, "chains come back in order, each once");
                assertEquals(8, used.length());
                q.memory.read(replies[sequence % SIZE], reply, 0, 8);
                assertEquals(~(long) sequence, ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN).getLong());
                received++;
            }
            device.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
            assertFalse(device.isAlive(), "the device thread finished");
            if (deviceFailure.get() != null) {
                throw new AssertionError("the device thread failed", deviceFailure.get());
            }
            assertEquals(CHAINS & 0xFFFF, q.device.nextUsed());
            q.guest.assertCanariesIntact();
        }
    }

    /** The device loop a backend runs: disable, drain, publish, notify, re-enable, sleep only if still empty. */
    private static void runDevice(QueuePair q, Semaphore kicks, Semaphore interrupts) throws InterruptedException {
        SplitQueue queue = q.device;
        DescriptorChain chain = new DescriptorChain(queue.maxChainSegments());
        byte[] request = new byte[8];
        byte[] reply = new byte[8];
        int processed = 0;
        while (processed < CHAINS) {
            queue.disableNotifications();
            while (queue.pop(chain)) {
                if (chain.copyFromReadable(q.memory, 0, request, 0, 8) != 8) {
                    throw new AssertionError("request of chain " + chain.head() + " is short: " + chain);
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
                        + " chains: a kick was lost; " + queue);
            }
        }
    }
}
