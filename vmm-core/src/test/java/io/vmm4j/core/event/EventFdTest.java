package io.vmm4j.core.event;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
}
