package io.vmm4j.cli.vm;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.vhost.kernel.VhostKernel;
import io.vmm4j.vhost.kernel.VhostNetBackend;
import io.vmm4j.vhost.user.VhostUserException;
import io.vmm4j.vhost.user.VhostUserNetBackend;
import io.vmm4j.virtio.net.NetBackend;

import java.nio.file.Path;
import java.util.function.Consumer;

/** The {@link NetBackend} each {@link DataPlane} is, opened on the NIC's port. */
final class NetBackends {
    private NetBackends() {
    }

    /** What the data plane needs from the host and the options, said before anything is created. */
    static void check(VmOptions options) {
        if (options.dataPlane() == DataPlane.VHOST_NET && !VhostKernel.available()) {
            throw new ToyVm.VmException("--backend vhost-net needs /dev/vhost-net, which this host does not have: modprobe vhost_net, "
                    + "or, where the kernel lacks CONFIG_VHOST_NET, run it in the lab VM (./vmm lab; ./vmm doctor says more)");
        }
        if (options.dataPlane() == DataPlane.VHOST_USER && options.socket() == null) {
            throw new ToyVm.VmException("--backend vhost-user needs --socket PATH, the back-end daemon's socket; " + startHint(options));
        }
    }

    /**
     * Opens the data plane on {@code port}. A vhost-user back-end is connected now (its features
     * decide what the device offers); {@code onHangup} hears when it goes away later.
     */
    static NetBackend open(VmOptions options, NetPort port, EventLoop control, Consumer<String> onHangup) {
        return switch (options.dataPlane()) {
            case EMULATED, EMULATED_SYNC -> new EmulatedNetBackend(port.port());
            case VHOST_NET -> {
                if (!(port.port() instanceof TapDevice tap)) {
                    throw new ToyVm.VmException("--backend vhost-net moves frames between the rings and a tap: use --port tap (needs "
                            + "CAP_NET_ADMIN)");
                }
                yield new VhostNetBackend(tap);
            }
            case VHOST_USER -> {
                VhostUserNetBackend vu;
                try {
                    vu = new VhostUserNetBackend(Path.of(options.socket()), control);
                } catch (VhostUserException e) {
                    throw new ToyVm.VmException(e.getMessage() + "; " + startHint(options));
                }
                vu.onHangup(onHangup);
                yield vu;
            }
        };
    }

    private static String startHint(VmOptions options) {
        return "start the back-end first: ./vmm vhost-user-backend --socket " + (options.socket() == null ? "PATH" : options.socket())
                + " --tap NAME (or --port memory)";
    }
}
