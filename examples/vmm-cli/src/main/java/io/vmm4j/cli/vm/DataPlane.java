package io.vmm4j.cli.vm;

import io.vmm4j.virtio.pci.VirtioPciTransport;

/** The virtio-net data plane {@code --backend} chooses: who moves frames between the rings and the port. */
public enum DataPlane implements OptionValue {
    /** The VMM's I/O thread, woken by the kick eventfd (ioeventfd), interrupting by irqfd. */
    EMULATED,
    /** The same engine run right at the notify write, on the vCPU thread (QEMU with ioeventfd=off). */
    EMULATED_SYNC,
    /** The kernel's vhost-net worker, on a tap. */
    VHOST_NET,
    /** A back-end process ({@code ./vmm vhost-user-backend}) on a UNIX socket, which owns the port. */
    VHOST_USER;

    /** The value {@code --backend} spells {@code label}. */
    public static DataPlane of(String label) {
        return OptionValue.of(DataPlane.class, label);
    }

    /** How the transport handles a notify write: at once on the writing vCPU, or as a kick eventfd signal. */
    public VirtioPciTransport.NotifyMode notifyMode() {
        return this == EMULATED_SYNC ? VirtioPciTransport.NotifyMode.SYNCHRONOUS : VirtioPciTransport.NotifyMode.IOEVENTFD;
    }

    /** How kicks reach the rings' server, and who that is, for the boot log. */
    public String describe() {
        return switch (this) {
            case EMULATED_SYNC -> "(notify handled on the vCPU thread)";
            case EMULATED -> "(ioeventfd + I/O thread)";
            case VHOST_NET -> "(ioeventfd + irqfd, rings served by the kernel's vhost worker)";
            case VHOST_USER -> "(ioeventfd + irqfd, rings served by the back-end process)";
        };
    }

    /** Whether the VMM opens the NIC's port itself; a vhost-user back-end owns its own. */
    public boolean vmmOwnsPort() {
        return this != VHOST_USER;
    }
}
