package io.vmm4j.cli.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vmm4j.vhost.user.VhostUserNetBackend;
import io.vmm4j.cli.capture.PacketCapture;
import io.vmm4j.cli.vm.ToyVm;
import io.vmm4j.virtio.DeviceStatus;
import io.vmm4j.virtio.VirtioFeatures;
import io.vmm4j.virtio.net.NetConfig;
import io.vmm4j.virtio.net.NetFeatures;
import io.vmm4j.virtio.net.NetQueueCounters;
import io.vmm4j.virtio.net.VirtioNet;
import io.vmm4j.virtio.pci.CommonConfigSnapshot;
import io.vmm4j.virtio.pci.MsixTable;
import io.vmm4j.virtio.pci.PciConfigSpace;
import io.vmm4j.virtio.pci.QueueRegisters;
import io.vmm4j.virtio.pci.VirtioPciTransport;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import static io.vmm4j.cli.qmp.QmpCommand.Parameter.optional;
import static io.vmm4j.cli.qmp.QmpCommand.Parameter.required;

/**
 * The toy VM's commands. Names, arguments and return shapes follow QEMU's QAPI schema where QEMU
 * has the command (query-version, query-status, query-pci, query-rx-filter, set_link,
 * system_reset, quit); vmm4j's own start with {@code x-vmm4j-}, as QMP marks experimental ones.
 */
public final class VmCommands {
    /** The NIC's name, QEMU's device id: set_link, query-rx-filter and events use it. */
    public static final String NIC = "net0";
    public static final String VERSION = "0.1.0";

    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    private final ToyVm vm;
    private final PacketCapture capture;
    private final VmEvents events;

    public VmCommands(ToyVm vm, PacketCapture capture, VmEvents events) {
        this.vm = vm;
        this.capture = capture;
        this.events = events;
    }

    /**
     * query-version's shape ({@code qemu: {major, minor, micro}, package}) with vmm4j's own
     * version numbers: QMP clients require the shape; the package string says who answers.
     */
    public static ObjectNode version() {
        ObjectNode v = JSON.objectNode();
        String[] parts = VERSION.split("\\.");
        ObjectNode q = v.putObject("qemu");
        q.put("major", Integer.parseInt(parts[0]));
        q.put("minor", Integer.parseInt(parts[1]));
        q.put("micro", Integer.parseInt(parts[2]));
        v.put("package", "vmm4j " + VERSION);
        return v;
    }

    public List<QmpCommand> all() {
        return List.of(
                QmpCommand.of("query-version", a -> version()),
                QmpCommand.of("query-status", a -> queryStatus()),
                QmpCommand.of("query-commands", a -> queryCommands()),
                QmpCommand.of("query-pci", a -> queryPci()),
                QmpCommand.of("query-rx-filter", List.of(optional("name", QmpCommand.Type.STRING)), this::queryRxFilter),
                QmpCommand.of("set_link", List.of(required("name", QmpCommand.Type.STRING), required("up", QmpCommand.Type.BOOLEAN)),
                        this::setLink),
                QmpCommand.of("system_reset", a -> systemReset()),
                QmpCommand.of("quit", a -> quit()),
                QmpCommand.of("x-vmm4j-query-virtio", a -> queryVirtio()),
                QmpCommand.of("x-vmm4j-query-backend", a -> queryBackend()),
                QmpCommand.of("x-vmm4j-pcap", List.of(required("action", QmpCommand.Type.STRING), optional("file", QmpCommand.Type.STRING)),
                        this::pcap));
    }

    // ---- QEMU's commands ----

    private JsonNode queryStatus() {
        String state = vm.runState();
        ObjectNode r = JSON.objectNode();
        r.put("running", state.equals("running"));
        r.put("status", state);
        return r;
    }

    private JsonNode queryCommands() {
        ArrayNode list = JSON.arrayNode();
        list.addObject().put("name", QmpSession.CAPABILITIES);
        for (QmpCommand c : all()) {
            list.addObject().put("name", c.name());
        }
        return list;
    }

    /** qapi/pci.json PciInfo: bus 0 and its devices, with IDs, class and the BARs as programmed. */
    private JsonNode queryPci() {
        ArrayNode devices = JSON.arrayNode();
        for (ToyVm.PciSlot slot : vm.pciSlots()) {
            ObjectNode d = devices.addObject();
            d.put("bus", 0);
            d.put("slot", slot.slot());
            d.put("function", 0);
            // dword 0x08: revision, programming interface, subclass, class
            int classCode = vm.readPciConfig(slot.slot(), PciConfigSpace.REVISION_ID, 4) >>> 8;
            ObjectNode classInfo = d.putObject("class_info");
            classInfo.put("desc", classDescription(classCode >> 8));
            classInfo.put("class", classCode >> 8);
            ObjectNode id = d.putObject("id");
            id.put("device", vm.readPciConfig(slot.slot(), PciConfigSpace.DEVICE_ID, 2));
            id.put("vendor", vm.readPciConfig(slot.slot(), PciConfigSpace.VENDOR_ID, 2));
            id.put("subsystem", vm.readPciConfig(slot.slot(), PciConfigSpace.SUBSYSTEM_ID, 2));
            id.put("subsystem-vendor", vm.readPciConfig(slot.slot(), PciConfigSpace.SUBSYSTEM_VENDOR_ID, 2));
            d.put("irq_pin", vm.readPciConfig(slot.slot(), PciConfigSpace.INTERRUPT_PIN, 1));
            d.put("qdev_id", slot.id());
            ArrayNode regions = d.putArray("regions");
            VirtioPciTransport t = slot.transport();
            if (t != null) {
                region(regions, VirtioPciTransport.VIRTIO_BAR, t.configSpace().barAddress(VirtioPciTransport.VIRTIO_BAR),
                        VirtioPciTransport.VIRTIO_BAR_SIZE);
                region(regions, VirtioPciTransport.MSIX_BAR, t.configSpace().barAddress(VirtioPciTransport.MSIX_BAR),
                        VirtioPciTransport.MSIX_BAR_SIZE);
            }
        }
        ObjectNode bus = JSON.objectNode();
        bus.put("bus", 0);
        bus.set("devices", devices);
        return JSON.arrayNode().add(bus);
    }

    private static void region(ArrayNode regions, int bar, long address, long size) {
        ObjectNode r = regions.addObject();
        r.put("bar", bar);
        r.put("type", "memory");
        r.put("address", address); // -1 while the BAR is not decoded, as QEMU reports it
        r.put("size", size);
        r.put("prefetch", false);
        r.put("mem_type_64", true);
    }

    private static String classDescription(int classAndSubclass) {
        return switch (classAndSubclass) {
            case 0x0600 -> "Host bridge";
            case 0x0200 -> "Ethernet controller";
            default -> String.format("Class %04x", classAndSubclass);
        };
    }

    /** qapi/net.json RxFilterInfo, from what the driver set on the control queue. */
    private JsonNode queryRxFilter(QmpArguments a) {
        String name = a.string("name", NIC);
        if (!name.equals(NIC)) {
            throw QmpException.generic("invalid net client name: " + name + " (this VM has one NIC, " + NIC + ")");
        }
        VirtioNet net = vm.net();
        VirtioNet.RxFilter f = net.rxFilter();
        ObjectNode r = JSON.objectNode();
        r.put("name", NIC);
        r.put("promiscuous", f.promiscuous());
        r.put("multicast", f.allMulticast() ? "all" : "normal");
        r.put("unicast", "normal");
        r.put("vlan", "all"); // no CTRL_VLAN: every VLAN passes
        r.put("broadcast-allowed", true);
        r.put("multicast-overflow", false);
        r.put("unicast-overflow", false);
        r.put("main-mac", NetConfig.format(net.config().mac()));
        r.putArray("vlan-table");
        ArrayNode uni = r.putArray("unicast-table");
        f.unicast().forEach(uni::add);
        ArrayNode multi = r.putArray("multicast-table");
        f.multicast().forEach(multi::add);
        events.rxFilterQueried(); // NIC_RX_FILTER_CHANGED may fire again
        return JSON.arrayNode().add(r);
    }

    private JsonNode setLink(QmpArguments a) {
        String name = a.string("name");
        if (!name.equals(NIC)) {
            throw new QmpException(QmpException.ErrorClass.DeviceNotFound, "Device '" + name + "' not found (this VM has one NIC, "
                    + NIC + ")");
        }
        boolean up = a.bool("up");
        VirtioNet net = vm.net();
        boolean changed = net.linkUp() != up;
        net.setLinkUp(up);
        if (changed) {
            events.linkChanged(NIC, up);
        }
        return null;
    }

    private JsonNode systemReset() {
        if (!vm.runState().equals("running")) {
            throw QmpException.generic("system_reset: the guest is not running (status " + vm.runState() + ")");
        }
        CompletableFuture<Void> reset = vm.requestSystemReset();
        if (reset.isCompletedExceptionally()) { // refused at once (a guest that cannot be reset): the reply says why
            throw QmpException.generic("system_reset: " + reset.exceptionNow().getMessage());
        }
        reset.thenRun(events::resetDone); // RESET once the vCPU has reset the devices
        return null;
    }

    private JsonNode quit() {
        events.quitRequested();
        vm.requestStop();
        return null;
    }

    // ---- vmm4j's commands ----

    /** Per virtio device: features by name, status, MSI-X, and each enabled queue's size, ring addresses and vector. */
    private JsonNode queryVirtio() {
        ArrayNode list = JSON.arrayNode();
        for (ToyVm.PciSlot slot : vm.pciSlots()) {
            VirtioPciTransport t = slot.transport();
            if (t == null) {
                continue;
            }
            CommonConfigSnapshot common = t.commonConfig();
            boolean isNet = t.device() instanceof VirtioNet;
            Map<Integer, String> names = isNet ? NetFeatures.NAMES : Map.of();
            ObjectNode d = list.addObject();
            d.put("name", slot.id());
            d.put("type", t.device().name());
            d.put("device-id", t.device().deviceType());
            d.put("pci-slot", slot.slot());
            int status = common.deviceStatus();
            d.put("status", DeviceStatus.describe(status));
            d.put("status-value", status);
            ObjectNode features = d.putObject("features");
            stringArray(features.putArray("offered"), VirtioFeatures.names(common.deviceFeatures(), names));
            long acked = (status & DeviceStatus.FEATURES_OK) != 0 ? common.driverFeatures() : 0;
            stringArray(features.putArray("acked"), VirtioFeatures.names(acked, names));
            String refusal = t.featureRefusal();
            if (refusal != null) {
                features.put("refused", refusal);
            }
            MsixTable msix = t.msix();
            ObjectNode m = d.putObject("msix");
            m.put("enabled", msix.enabled());
            m.put("function-masked", msix.functionMasked());
            m.put("vectors", msix.vectors());
            m.put("messages-delivered", msix.deliveredCount());
            m.put("config-interrupts", t.configInterruptCount());
            ArrayNode queues = d.putArray("queues");
            for (QueueRegisters q : common.queues()) {
                if (!q.enabled()) {
                    continue;
                }
                ObjectNode qn = queues.addObject();
                qn.put("index", q.index());
                qn.put("name", queueName(t, q.index()));
                qn.put("size", q.size());
                qn.put("desc", q.desc());
                qn.put("avail", q.driver());
                qn.put("used", q.device());
                if (q.msixVector() == MsixTable.NO_VECTOR) {
                    qn.putNull("msix-vector");
                } else {
                    qn.put("msix-vector", q.msixVector());
                }
                qn.put("notifies", t.notifyCount(q.index()));
                qn.put("interrupts", t.queueInterruptCount(q.index()));
            }
            ObjectNode errors = d.putObject("needs-reset");
            errors.put("count", t.needsResetCount());
            String lastError = t.lastError();
            if (lastError != null) {
                errors.put("last-error", lastError);
            }
            if (t.device() instanceof VirtioNet net) {
                ObjectNode n = d.putObject("net");
                n.put("mac", NetConfig.format(net.config().mac()));
                n.put("link-up", net.linkUp());
                n.put("mtu", net.config().mtu());
                n.put("max-queue-pairs", net.config().maxQueuePairs());
                n.put("active-queue-pairs", net.activePairs());
                n.put("queue-size", net.config().queueSize());
            }
        }
        return list;
    }

    private static String queueName(VirtioPciTransport t, int index) {
        if (!(t.device() instanceof VirtioNet net)) {
            return t.device().deviceType() == 4 ? "requestq" : "queue" + index; // virtio-rng's one queue (§5.4.2)
        }
        int pairs = net.config().maxQueuePairs();
        if (index == 2 * pairs) {
            return "controlq";
        }
        return (index % 2 == 0 ? "receiveq" : "transmitq") + (index / 2 + 1);
    }

    /** The NIC's data plane and its per-queue counters (the same numbers /metrics exports). */
    private JsonNode queryBackend() {
        VirtioNet net = vm.net();
        ObjectNode r = JSON.objectNode();
        r.put("name", net.backend().name());
        r.put("port", vm.portKind());
        r.put("port-name", vm.portName()); // with vhost-user there is no port in the VMM: the socket
        r.put("active-queue-pairs", net.activePairs());
        VhostUserNetBackend.ConnectionStatus link = vm.backendConnection();
        if (link != null) {
            ObjectNode conn = r.putObject("connection");
            conn.put("mode", link.mode()); // client (--socket) or server (--socket-listen)
            conn.put("socket", link.socket().toString());
            conn.put("state", link.connected() ? "connected" : "disconnected");
            conn.put("reconnect-seconds", link.reconnectSeconds());
            conn.put("disconnects", link.disconnects());
            conn.put("reconnects", link.reconnects());
            conn.put("refused", link.refused());
            conn.put("frames-dropped-while-disconnected", vm.framesDroppedWhileBackendAway());
            if (link.lastProblem() != null) {
                conn.put("last-problem", link.lastProblem());
            }
        }
        ArrayNode queues = r.putArray("queues");
        for (NetQueueCounters counters : net.counters()) {
            NetQueueCounters.Snapshot c = counters.snapshot();
            ObjectNode q = queues.addObject();
            q.put("queue", c.direction() + c.pair());
            q.put("pair", c.pair());
            q.put("direction", c.direction());
            q.put("packets", c.packets());
            q.put("bytes", c.bytes());
            q.put("kicks", c.kicks());
            q.put("interrupts", c.interrupts());
            q.put("interrupts-suppressed", c.interruptsSuppressed());
            q.put("drops-no-buffer", c.dropsNoBuffer());
            q.put("port-errors", c.portErrors());
            q.put("drops-link-down", c.dropsLinkDown());
        }
        PacketCapture.Status s = capture.status();
        ObjectNode pcap = r.putObject("pcap");
        pcap.put("running", s.file() != null);
        if (s.file() != null) {
            pcap.put("file", s.file().toString());
        }
        pcap.put("frames", s.frames());
        return r;
    }

    /** {@code {"action": "start", "file": PATH}} or {@code {"action": "stop"}}; returns file and frames written. */
    private JsonNode pcap(QmpArguments a) {
        String action = a.string("action");
        PacketCapture.Status s;
        try {
            switch (action) {
                case "start" -> {
                    if (!a.has("file")) {
                        throw QmpException.generic("Parameter 'file' is missing (x-vmm4j-pcap start writes to a file)");
                    }
                    s = capture.start(Path.of(a.string("file")).toAbsolutePath());
                }
                case "stop" -> {
                    if (a.has("file")) {
                        throw QmpException.generic("Parameter 'file' is unexpected with action 'stop'");
                    }
                    s = capture.stop();
                }
                default -> throw QmpException.generic("Parameter 'action' does not accept value '" + action + "' (start or stop)");
            }
        } catch (PacketCapture.CaptureException e) {
            throw QmpException.generic(e.getMessage());
        }
        ObjectNode r = JSON.objectNode();
        r.put("file", s.file().toString());
        r.put("frames", s.frames());
        return r;
    }

    private static void stringArray(ArrayNode array, List<String> values) {
        values.forEach(array::add);
    }
}
