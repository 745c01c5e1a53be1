/** vmm4j core: Linux through FFM, guest memory, eventfds and the event loop, the PIO/MMIO bus, KVM ABI. */
module io.vmm4j.core {
    requires org.slf4j;

    exports io.vmm4j.core.linux;
    exports io.vmm4j.core.memory;
    exports io.vmm4j.core.event;
    exports io.vmm4j.core.bus;
    exports io.vmm4j.core.kvm;
    exports io.vmm4j.core.irq;
    exports io.vmm4j.core.boot;
}
