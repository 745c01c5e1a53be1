package io.vmm4j.virtio.driver;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The Java guest's local APIC, the receiving end of MSI: a message written to the x86 MSI address
 * range (0xFEEx_xxxx) raises the vector in its data's low byte; the driver waits on vectors and
 * counts them. Messages to any other address are counted as stray. It is guest hardware, not the
 * VMM's {@code MsiSink}: a VM with a Java guest wires its MSI delivery to {@link #receive} (for
 * example {@code new VirtioPciTransport(device, memory, mmio, apic::receive, ...)}), as a VM under
 * KVM wires it to {@code KvmVm::signalMsi}.
 */
public final class GuestLocalApic {
    /** No vector raised yet. */
    public GuestLocalApic() {
    }


    /** Intel SDM vol. 3 §11.11.1: the MSI address of the local APIC with ID 0 (the boot CPU), physical destination mode. */
    public static final long MSI_ADDRESS = 0xFEE0_0000L;

    private final AtomicLongArray raised = new AtomicLongArray(256);
    private final java.util.concurrent.atomic.AtomicLong total = new java.util.concurrent.atomic.AtomicLong();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private volatile long stray;
    private volatile long lastAddress;
    private volatile int lastData;

    /** An MSI write on the system bus: raises the vector if it is addressed to a local APIC. */
    public void receive(long address, int data) {
        lastAddress = address;
        lastData = data;
        if ((address & 0xFFF0_0000L) != MSI_ADDRESS) {
            stray++;
            return;
        }
        raised.incrementAndGet(data & 0xFF);
        total.incrementAndGet();
        lock.lock();
        try {
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** How many times {@code vector} was raised. */
    public long count(int vector) {
        return raised.get(vector);
    }

    public long strayCount() {
        return stray;
    }

    /** The (address, data) of the last message, as the device wrote it. */
    public long lastAddress() {
        return lastAddress;
    }

    public int lastData() {
        return lastData;
    }

    /** Interrupts raised on any vector so far. */
    public long total() {
        return total.get();
    }

    /** Waits until any vector is raised after {@code seenTotal}; returns the new total (or {@code seenTotal} on timeout). */
    public long awaitAny(long seenTotal, long timeoutNanos) throws InterruptedException {
        long deadline = System.nanoTime() + timeoutNanos;
        lock.lock();
        try {
            while (total.get() <= seenTotal) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return seenTotal;
                }
                changed.awaitNanos(left);
            }
            return total.get();
        } finally {
            lock.unlock();
        }
    }

    /** Waits until {@code vector} has been raised more than {@code seen} times; returns the new count (or {@code seen} on timeout). */
    public long awaitBeyond(int vector, long seen, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        lock.lock();
        try {
            while (raised.get(vector) <= seen) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return seen;
                }
                changed.awaitNanos(left);
            }
            return raised.get(vector);
        } finally {
            lock.unlock();
        }
    }
}
