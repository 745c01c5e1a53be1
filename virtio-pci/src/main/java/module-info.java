/** vmm4j virtio-pci: PCI transport, virtio core, split virtqueues, virtio-net device model, guest-side test driver. */
module io.vmm4j.virtio {
    requires transitive io.vmm4j.core;
}
