/** vmm4j virtio-pci: PCI transport, virtio core, split virtqueues, guest-side test driver. */
module io.vmm4j.virtio {
    requires transitive io.vmm4j.core;
    requires org.slf4j;
    requires transitive micrometer.core;

    exports io.vmm4j.virtio;
    exports io.vmm4j.virtio.pci;
    exports io.vmm4j.virtio.pci.kvm;
    exports io.vmm4j.virtio.queue;
    exports io.vmm4j.virtio.driver;
    exports io.vmm4j.virtio.driver.net;
    exports io.vmm4j.virtio.net;
}
