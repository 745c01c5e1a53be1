/** virtio-rng (entropy device) built on the virtio-pci transport alone. */
module io.vmm4j.examples.rng {
    requires io.vmm4j.virtio;
    requires org.slf4j;

    exports io.vmm4j.examples.rng;
}
