package io.vmm4j.virtio.driver.net;

import java.util.function.LongSupplier;

/** A nanosecond clock that moves only when the test says so. */
final class ManualClock implements LongSupplier {
    long now;

    @Override
    public long getAsLong() {
        return now;
    }
}
