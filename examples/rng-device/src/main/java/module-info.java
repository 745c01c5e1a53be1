/** virtio-rng (entropy device) built on the virtio-pci transport alone. */
module io.vmm4j.examples.rng {
    requires transitive io.vmm4j.virtio; // VirtioRng is a VirtioDevice served on an EventLoop
    requires org.slf4j;

    exports io.vmm4j.examples.rng;
}
