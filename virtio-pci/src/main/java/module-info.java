/** vmm4j virtio-pci: PCI transport, virtio core, split and packed virtqueue engines, the virtio-net device model. */
module io.vmm4j.virtio {
    requires transitive io.vmm4j.core;
    requires org.slf4j;

    exports io.vmm4j.virtio;
    exports io.vmm4j.virtio.pci;
    exports io.vmm4j.virtio.pci.kvm;
    exports io.vmm4j.virtio.queue;
    exports io.vmm4j.virtio.net;
}
