package io.vmm4j.cli.qmp;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vmm4j.cli.vm.ToyVm;
import io.vmm4j.vhost.BackendConnectionListener;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.VirtioPciTransport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Turns what happens in the VM into QMP events. QEMU's names and data where QEMU has the event:
 * <ul>
 *   <li>{@code NIC_RX_FILTER_CHANGED} {name, path}: the driver changed the receive filter; as in
 *       QEMU, sent once and then not again until a client runs query-rx-filter;</li>
 *   <li>{@code RESET} {guest, reason} after system_reset, {@code SHUTDOWN} {guest, reason} when the VM stops;</li>
 *   <li>{@code NETDEV_VHOST_USER_CONNECTED} {netdev-id, chardev-id} and
 *       {@code NETDEV_VHOST_USER_DISCONNECTED} {netdev-id}: a data plane outside the VMM came or
 *       went (the {@link BackendConnectionListener} a vhost-user backend calls).</li>
 * </ul>
 * vmm4j's own: {@code X_VMM4J_NIC_LINK_CHANGED} {name, up} when set_link changes the link, and
 * {@code X_VMM4J_DEVICE_NEEDS_RESET} {device, reason} when a device hits a ring or activation error.
 */
public final class VmEvents implements VirtioNet.Listener, BackendConnectionListener {
    private static final Logger LOG = LoggerFactory.getLogger(VmEvents.class);
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    private final AtomicBoolean rxFilterNotify = new AtomicBoolean(true);
    private volatile QmpServer server;
    private volatile boolean quitRequested;

    /** Listens to the VM's NIC and devices; call before the guest runs. */
    public void attach(ToyVm vm) {
        vm.net().addListener(this);
        for (ToyVm.PciSlot slot : vm.pciSlots()) {
            if (slot.transport() != null) {
                String device = slot.id();
                slot.transport().addObserver(new VirtioPciTransport.Observer() {
                    @Override
                    public void deviceError(String reason) {
                        ObjectNode d = JSON.objectNode();
                        d.put("device", device);
                        d.put("reason", reason);
                        emit("X_VMM4J_DEVICE_NEEDS_RESET", d);
                    }
                });
            }
        }
    }

    /** Where events go from now on (none before: nobody could have connected). */
    public void publishTo(QmpServer server) {
        this.server = server;
    }

    private void emit(String name, ObjectNode data) {
        QmpServer s = server;
        if (s != null) {
            s.emit(name, data);
        }
    }

    @Override
    public void rxFilterChanged(VirtioNet.RxFilter filter) {
        if (rxFilterNotify.compareAndSet(true, false)) {
            ObjectNode d = JSON.objectNode();
            d.put("name", VmCommands.NIC);
            d.put("path", "/machine/peripheral/" + VmCommands.NIC + "/virtio-backend");
            emit("NIC_RX_FILTER_CHANGED", d);
        }
    }

    /** query-rx-filter ran: the next change is announced again. */
    void rxFilterQueried() {
        rxFilterNotify.set(true);
    }

    void linkChanged(String nic, boolean up) {
        ObjectNode d = JSON.objectNode();
        d.put("name", nic);
        d.put("up", up);
        emit("X_VMM4J_NIC_LINK_CHANGED", d);
    }

    void resetDone() {
        ObjectNode d = JSON.objectNode();
        d.put("guest", false);
        d.put("reason", "host-qmp-system-reset");
        emit("RESET", d);
    }

    void quitRequested() {
        quitRequested = true;
    }

    /** The VM stopped: SHUTDOWN, caused by quit or by the guest finishing its program. */
    public void vmStopped() {
        ObjectNode d = JSON.objectNode();
        d.put("guest", !quitRequested);
        d.put("reason", quitRequested ? "host-qmp-quit" : "guest-shutdown");
        emit("SHUTDOWN", d);
    }

    @Override
    public void connected(String netdevId, String endpoint) {
        ObjectNode d = JSON.objectNode();
        d.put("netdev-id", netdevId);
        d.put("chardev-id", endpoint);
        emit("NETDEV_VHOST_USER_CONNECTED", d);
    }

    @Override
    public void disconnected(String netdevId, String reason) {
        LOG.warn("data plane {} disconnected: {}", netdevId, reason);
        ObjectNode d = JSON.objectNode();
        d.put("netdev-id", netdevId);
        emit("NETDEV_VHOST_USER_DISCONNECTED", d);
    }
}
