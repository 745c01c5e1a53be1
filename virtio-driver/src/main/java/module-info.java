/**
 * vmm4j virtio-driver: the guest side, for tests and the toy VMM's Java guest. PCI firmware, a
 * virtio-pci modern driver, the driver's half of a split ring, a virtio-net driver, the guest's
 * local APIC and a tiny IP stack. It sits on the transport's public API; the transport does not
 * know it.
 */
module io.vmm4j.virtio.driver {
    requires transitive io.vmm4j.virtio;

    exports io.vmm4j.virtio.driver;
    exports io.vmm4j.virtio.driver.net;
}
