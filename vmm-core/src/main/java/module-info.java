/**
 * vmm4j core: Linux through FFM, guest memory, eventfds and the event loop, the PIO/MMIO bus, KVM ABI,
 * the x86 Linux boot protocol (boot) and the PC devices and machine a stock kernel boots on (x86),
 * and a throttle for log lines a guest or peer can trigger (log).
 */
module io.vmm4j.core {
    requires org.slf4j;

    exports io.vmm4j.core.linux;
    exports io.vmm4j.core.memory;
    exports io.vmm4j.core.event;
    exports io.vmm4j.core.bus;
    exports io.vmm4j.core.kvm;
    exports io.vmm4j.core.irq;
    exports io.vmm4j.core.boot;
    exports io.vmm4j.core.x86;
    exports io.vmm4j.core.log;
}
