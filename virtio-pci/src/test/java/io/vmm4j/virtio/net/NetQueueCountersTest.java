package io.vmm4j.virtio.net;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** One snapshot of a queue's counters carries every counter, and two of them add up field by field. */
class NetQueueCountersTest {
    private static NetQueueCounters counters(int queue, long base) {
        NetQueueCounters c = new NetQueueCounters(queue, queue % 2 == 0 ? "rx" : "tx");
        c.packets = base + 1;
        c.bytes = base + 2;
        c.kicks = base + 3;
        c.interrupts = base + 4;
        c.interruptsSuppressed = base + 5;
        c.dropsNoBuffer = base + 6;
        c.dropsLinkDown = base + 7;
        c.portErrors = base + 8;
        return c;
    }

    @Test
    void aSnapshotHasEveryCounterDropsLinkDownIncluded() {
        assertEquals(new NetQueueCounters.Snapshot(3, "tx", 11, 12, 13, 14, 15, 16, 18, 17), counters(3, 10).snapshot());
        assertEquals(1, counters(3, 10).snapshot().pair(), "transmitq2 is pair 1");
    }

    @Test
    void snapshotsAddUpFieldByFieldAndZeroIsTheStart() {
        NetQueueCounters.Snapshot zero = NetQueueCounters.Snapshot.zero(2);
        assertEquals(new NetQueueCounters.Snapshot(2, "rx", 0, 0, 0, 0, 0, 0, 0, 0), zero);
        NetQueueCounters.Snapshot sum = zero.plus(counters(2, 10).snapshot()).plus(counters(2, 100).snapshot());
        assertEquals(new NetQueueCounters.Snapshot(2, "rx", 112, 114, 116, 118, 120, 122, 126, 124), sum);
    }
}
