/** vmm4j's freestanding KVM test guest (built from C by the Maven build) and the ABI the VMM uses to boot it. */
module io.vmm4j.guest {
    requires transitive io.vmm4j.core;

    exports io.vmm4j.guest;
}
