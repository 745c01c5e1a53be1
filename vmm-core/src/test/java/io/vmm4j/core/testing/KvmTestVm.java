package io.vmm4j.core.testing;

import io.vmm4j.core.bus.Bus;
import io.vmm4j.core.bus.BusDevice;
import io.vmm4j.core.kvm.Kvm;
import io.vmm4j.core.kvm.KvmVcpu;
import io.vmm4j.core.kvm.KvmVm;
import io.vmm4j.core.kvm.LongMode;
import io.vmm4j.core.memory.GuestMemory;

import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * A KVM VM in miniature for tests: 16 MiB of RAM at 0, PIO and MMIO buses, optionally the
 * in-kernel irqchip, one vCPU in 64-bit mode whose code (from {@link GuestAssembler}) sits at
 * {@link #CODE}. Gated on /dev/kvm and gcc by the constructor's caller.
 */
public final class KvmTestVm implements AutoCloseable {
    public static final long RAM_SIZE = 16L << 20;
    public static final long CODE = 0x10000;
    public static final long STACK_TOP = 0x80000;
    /** Scratch RAM the guest code may use for results. */
    public static final long DATA = 0x90000;

    public final GuestMemory memory = GuestMemory.builder().region(0, RAM_SIZE).build();
    public final Bus pio = new Bus("pio");
    public final Bus mmio = new Bus("mmio");
    public final KvmVm vm;
    public final KvmVcpu vcpu;

    public KvmTestVm(String asm, boolean irqchip) throws Exception {
        HostRequirements.requireKvm();
        byte[] code = GuestAssembler.assemble(asm, CODE);
        try (Kvm kvm = Kvm.open()) {
            vm = kvm.createVm();
        }
        if (irqchip) {
            vm.createIrqchip();
        }
        vm.mapMemory(memory);
        vcpu = vm.createVcpu(0, pio, mmio);
        memory.write(CODE, code, 0, code.length);
        LongMode.enter(vcpu, memory, CODE, STACK_TOP, 0);
    }

    /** A port that records what the guest writes and calls {@code onWrite} (on the vCPU thread). */
    public static final class RecordingPort implements BusDevice {
        public final List<Long> written = new ArrayList<>();
        public long readValue;
        private final LongConsumer onWrite;

        public RecordingPort(long readValue, LongConsumer onWrite) {
            this.readValue = readValue;
            this.onWrite = onWrite;
        }

        @Override
        public synchronized long read(long offset, int size) {
            return readValue;
        }

        @Override
        public void write(long offset, int size, long value) {
            synchronized (this) {
                written.add(value);
            }
            onWrite.accept(value);
        }

        public synchronized List<Long> values() {
            return List.copyOf(written);
        }
    }

    @Override
    public void close() {
        vm.close();
        memory.close();
    }
}
