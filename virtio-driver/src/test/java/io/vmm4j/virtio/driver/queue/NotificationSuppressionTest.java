package io.vmm4j.virtio.driver.queue;

import io.vmm4j.virtio.queue.DescriptorChain;
import io.vmm4j.virtio.queue.SplitRing;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Both directions of notification suppression (virtio 1.2 §2.7.7 used buffers, §2.7.10 available
 * buffers), with the flags mechanism and with VIRTIO_F_EVENT_IDX, and the re-enable race.
 */
class NotificationSuppressionTest {
    private QueuePair q;
    private long buf;

    @AfterEach
    void tearDown() {
        q.guest.assertCanariesIntact();
        q.close();
    }

    private QueuePair pair(int size, boolean eventIdx) {
        q = new QueuePair(size, eventIdx);
        buf = q.buffer(16);
        return q;
    }

    private int offer() {
        int head = q.driver.add(new long[] {buf}, new int[] {16}, 0);
        q.driver.publish();
        return head;
    }

    /** Device takes one chain and publishes it as used. */
    private void useOne() {
        DescriptorChain c = q.popOne();
        q.device.push(c.head(), 0);
        q.device.publish();
    }

    private int usedFlags() {
        return Short.toUnsignedInt(q.memory.readShort(q.driver.usedRing()));
    }

    private int availEvent() {
        return Short.toUnsignedInt(q.memory.readShort(q.driver.usedRing() + SplitRing.availEventOffset(q.driver.size())));
    }

    private int usedEvent() {
        return Short.toUnsignedInt(q.memory.readShort(q.driver.availRing() + SplitRing.usedEventOffset(q.driver.size())));
    }

    @Test
    void withoutEventIdxUsedNotificationFollowsNoInterrupt() {
        pair(8, false);
        offer();
        offer();
        offer();
        useOne();
        assertTrue(q.device.needsNotification(), "avail flags 0: the device must notify (§2.7.7.2)");
        assertFalse(q.device.needsNotification(), "nothing published since the last decision");

        q.driver.setInterruptSuppressed(true);
        assertEquals(SplitRing.AVAIL_F_NO_INTERRUPT, Short.toUnsignedInt(q.memory.readShort(q.driver.availRing())));
        useOne();
        assertFalse(q.device.needsNotification(), "NO_INTERRUPT set");

        q.driver.setInterruptSuppressed(false);
        useOne();
        assertTrue(q.device.needsNotification());
    }

    @Test
    void withEventIdxUsedNotificationFollowsUsedEvent() {
        pair(8, true);
        for (int i = 0; i < 6; i++) {
            offer();
        }
        q.memory.writeShort(q.driver.availRing(), (short) SplitRing.AVAIL_F_NO_INTERRUPT);
        useOne();
        assertTrue(q.device.needsNotification(), "used_event 0: notify when element 0 is written; flags are ignored (§2.7.7.2)");
        useOne();
        assertFalse(q.device.needsNotification(), "used_event still 0: element 1 does not reach it");

        assertNotNull(q.driver.pollUsed());
        assertNotNull(q.driver.pollUsed());
        assertEquals(2, usedEvent(), "the driver asks for the element after the last one it took");
        useOne();
        assertTrue(q.device.needsNotification(), "element 2 written: used idx reached used_event + 1");

        q.driver.setInterruptSuppressed(true);
        useOne();
        useOne();
        assertFalse(q.device.needsNotification(), "used_event set behind the driver: suppressed");

        assertEquals(1, usedEvent(), "suppressed: used_event is the element the driver took last");
        for (int i = 0; i < 3; i++) {
            assertNotNull(q.driver.pollUsed());
        }
        assertEquals(1, usedEvent(), "while suppressed, taking elements does not move used_event");
        q.driver.setInterruptSuppressed(false);
        assertEquals(5, usedEvent(), "re-enabled at the driver's last used index");
        useOne();
        assertTrue(q.device.needsNotification(), "element 5 written: used idx reached used_event + 1");
        assertFalse(q.device.needsNotification());
    }

    @Test
    void withEventIdxABatchThatJumpsOverUsedEventNotifies() {
        pair(8, true);
        for (int i = 0; i < 5; i++) {
            offer();
        }
        q.memory.writeShort(q.driver.availRing() + SplitRing.usedEventOffset(8), (short) 2);
        for (int i = 0; i < 5; i++) {
            q.device.push(q.popOne().head(), 0);
        }
        q.device.publish();
        assertTrue(q.device.needsNotification(), "used idx went 0 -> 5, passing used_event 2");
    }

    @Test
    void firstDecisionAfterSetPositionNotifies() {
        pair(8, true);
        offer();
        offer();
        q.device.setPosition(0, 0);
        q.memory.writeShort(q.driver.availRing() + SplitRing.usedEventOffset(8), (short) 40);
        useOne();
        assertTrue(q.device.needsNotification(), "the last decision of the previous backend is unknown");
        useOne();
        assertFalse(q.device.needsNotification(), "now used_event 40 rules");
    }

    @Test
    void withoutEventIdxKickFollowsNoNotify() {
        pair(8, false);
        offer();
        assertTrue(q.driver.needsKick(), "used flags 0: the driver must kick (§2.7.10.1)");
        assertFalse(q.driver.needsKick(), "nothing published since the last decision");

        q.device.disableNotifications();
        assertEquals(SplitRing.USED_F_NO_NOTIFY, usedFlags());
        offer();
        assertFalse(q.driver.needsKick(), "NO_NOTIFY set");

        assertTrue(q.device.enableNotifications(), "the chain published while disabled is there");
        assertEquals(0, usedFlags());
        offer();
        assertTrue(q.driver.needsKick());
    }

    @Test
    void withEventIdxKickFollowsAvailEvent() {
        pair(8, true);
        offer();
        assertTrue(q.driver.needsKick(), "avail_event 0: kick when entry 0 is published");
        offer();
        assertFalse(q.driver.needsKick(), "entry 1 does not reach avail_event 0");

        q.popOne();
        assertEquals(1, availEvent(), "pop with notifications on keeps avail_event at the next avail index");
        q.popOne();
        assertEquals(2, availEvent());
        assertEquals(0, usedFlags(), "with EVENT_IDX the device leaves used flags at 0 (§2.7.10.2)");
        offer();
        assertTrue(q.driver.needsKick(), "entry 2 reaches avail_event 2");

        q.device.disableNotifications();
        assertEquals(0, usedFlags(), "disabling under EVENT_IDX never sets flags");
        q.popOne();
        assertEquals(2, availEvent(), "disabled: avail_event stops moving");
        offer();
        offer();
        assertFalse(q.driver.needsKick(), "entries 3 and 4 are past the stale avail_event 2");

        assertTrue(q.device.enableNotifications(), "entries 3 and 4 wait");
        assertEquals(3, availEvent());
    }

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void enableNotificationsReportsAChainPublishedWhileDisabled(boolean eventIdx) {
        // the lost-kick race: the driver publishes after the device's last pop but before re-enable
        pair(8, eventIdx);
        offer();
        assertTrue(q.driver.needsKick());
        q.device.disableNotifications();
        q.popOne();
        assertFalse(q.device.pop(q.chain), "the ring is empty");

        int head = offer();
        assertFalse(q.driver.needsKick(), "notifications are off, so the driver does not kick");

        assertTrue(q.device.enableNotifications(), "the device must go round again instead of sleeping");
        assertEquals(head, q.popOne().head());
    }

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void enableNotificationsOnAnEmptyRingLetsTheNextPublishKick(boolean eventIdx) {
        pair(8, eventIdx);
        offer();
        q.driver.needsKick();
        q.device.disableNotifications();
        q.popOne();
        assertFalse(q.device.enableNotifications(), "nothing new: safe to sleep");
        offer();
        assertTrue(q.driver.needsKick(), "the next publish kicks the sleeping device");
    }

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {false, true})
    void chainsGivenBackAreNotNewSoTheDeviceSleepsAndTheNextPublishKicks(boolean eventIdx) {
        // a receive path whose frame needs more buffers than are posted: it takes them all, gives them back, waits
        pair(8, eventIdx);
        offer();
        offer();
        q.driver.needsKick();
        q.device.disableNotifications();
        q.popOne();
        q.popOne();
        q.device.rewind(2);
        assertFalse(q.device.enableNotifications(), "the two given back were looked at: nothing new, so sleep instead of spinning");
        if (eventIdx) {
            assertEquals(2, availEvent(), "avail_event names the next entry the driver writes, past the ones given back (§2.7.10)");
        }
        offer();
        assertTrue(q.driver.needsKick(), "the driver's next buffer kicks the sleeping device");
        q.device.disableNotifications();
        assertEquals(3, ((q.driver.availIdx() - q.device.nextAvail()) & 0xFFFF), "the two given back wait with the new one");
        q.popOne();
        q.popOne();
        q.popOne();
        q.device.rewind(3);
        assertFalse(q.device.enableNotifications());
        offer();
        assertTrue(q.device.enableNotifications(), "a buffer published while notifications were off is new");
        for (int i = 0; i < 4; i++) {
            q.popOne();
        }
        assertFalse(q.device.pop(q.chain));
        assertFalse(q.device.enableNotifications());
        if (eventIdx) {
            assertEquals(4, availEvent());
        }
    }

    @Test
    void withEventIdxAnEmptyPopLooksAgainAfterAFence() {
        // with notifications on, pop moves avail_event; an empty pop must not miss an entry published
        // since the last look (here the entry is already visible, so the re-read finds it at once)
        pair(8, true);
        offer();
        q.popOne();
        assertFalse(q.device.pop(q.chain));
        offer();
        assertTrue(q.device.pop(q.chain));
        assertFalse(q.device.pop(q.chain));
    }
}
