package io.vmm4j.core.event;

import io.vmm4j.core.testing.AllocatedBytes;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EventFdTest {
    @Test
    void signalsAccumulateUntilDrained() {
        try (EventFd e = EventFd.create()) {
            assertEquals(0, e.drain(), "nothing pending");
            e.signal();
            e.signal();
            e.signal();
            assertEquals(3, e.drain());
            assertEquals(0, e.drain());
        }
    }

    @Test
    void awaitReturnsOnSignalFromAnotherThreadAndTimesOutOtherwise() throws Exception {
        try (EventFd e = EventFd.create()) {
            assertEquals(0, e.await(20), "timeout with nothing pending");
            Thread t = Thread.ofPlatform().start(e::signal);
            assertEquals(1, e.await(10_000));
            t.join();
        }
    }

    /** A signal and a drain happen per wake-up of every data plane: neither may allocate. */
    @Test
    void signalAndDrainAllocateNothing() {
        AllocatedBytes allocated = new AllocatedBytes();
        long thread = Thread.currentThread().threadId();
        try (EventFd e = EventFd.create()) {
            for (int i = 0; i < 200_000; i++) { // warm up: the JIT compiles both
                e.signal();
                e.drain();
            }
            long before = allocated.of(thread);
            for (int i = 0; i < 100_000; i++) {
                e.signal();
                e.drain();
            }
            long bytes = allocated.of(thread) - before;
            assertTrue(bytes < 100_000, "100000 signal+drain pairs allocated " + bytes + " bytes");
        }
    }
}
