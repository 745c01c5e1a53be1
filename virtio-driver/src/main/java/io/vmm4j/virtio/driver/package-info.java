/**
 * The guest side of a virtio-pci device, in Java: what a guest's firmware and drivers do, through
 * bus accesses (PCI config space, BAR registers) and guest memory only. {@link
 * io.vmm4j.virtio.driver.PciFirmware} enumerates and assigns BARs, {@link
 * io.vmm4j.virtio.driver.VirtioPciDriver} probes and negotiates, {@link
 * io.vmm4j.virtio.driver.DriverVirtqueue} is the driver's half of a virtqueue ({@link
 * io.vmm4j.virtio.driver.DriverQueue} split, {@link io.vmm4j.virtio.driver.PackedDriverQueue}
 * packed), {@link
 * io.vmm4j.virtio.driver.VirtioNetDriver} brings a NIC up, and {@link
 * io.vmm4j.virtio.driver.GuestLocalApic} receives the device's MSI writes. For tests and the toy
 * VMM's Java guest; the transport does not depend on it.
 */
package io.vmm4j.virtio.driver;
