package io.vmm4j.vhost.engine;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A ring error names its queue the way virtio-net does (§5.1.2), for any pair: receiveq N+1 is 2N, transmitq N+1 is 2N + 1. */
class RingErrorTest {
    @Test
    void eachVirtqueueHasItsVirtioNetName() {
        RingError rx = new RingError(2, RingError.Cause.RING_BROKEN, "a bad buffer");
        RingError tx = new RingError(3, RingError.Cause.GUEST_MEMORY_FAULT, "an access to guest memory faulted");
        assertEquals(1, rx.pair());
        assertEquals(1, tx.pair());
        assertEquals("receiveq2: a bad buffer", rx.message());
        assertEquals("transmitq2: an access to guest memory faulted", tx.message());
        assertEquals("transmitq1", new RingError(1, RingError.Cause.RING_BROKEN, "x").queueName());
        assertEquals("receiveq1", new RingError(0, RingError.Cause.RING_BROKEN, "x").queueName());
    }
}
