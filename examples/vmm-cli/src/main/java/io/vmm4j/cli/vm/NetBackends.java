package io.vmm4j.cli.vm;

import io.vmm4j.core.event.EventLoop;
import io.vmm4j.core.linux.SocketPathException;
import io.vmm4j.tap.TapDevice;
import io.vmm4j.vhost.emulated.EmulatedNetBackend;
import io.vmm4j.vhost.kernel.VhostKernel;
import io.vmm4j.vhost.kernel.VhostNetBackend;
import io.vmm4j.vhost.user.VhostUserException;
import io.vmm4j.vhost.user.VhostUserNetBackend;
import io.vmm4j.virtio.net.NetBackend;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

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
            throw new ToyVm.VmException("--backend vhost-user needs --socket PATH, the back-end daemon's socket (or --socket-listen PATH "
                    + "for the back-end to connect to); " + startHint(options));
        }
        if (options.pollMicros() > 0 && options.dataPlane() != DataPlane.EMULATED) {
            throw new ToyVm.VmException("--poll-us is for the emulated data plane's I/O threads; the data plane here is "
                    + options.dataPlane().label());
        }
        if (options.dataPlane() != DataPlane.VHOST_USER && (options.socketListen() || options.reconnectSeconds() > 0)) {
            throw new ToyVm.VmException((options.socketListen() ? "--socket-listen" : "--reconnect") + " is for --backend vhost-user; "
                    + "the data plane here is " + options.dataPlane().label());
        }
    }

    /**
     * Opens the data plane on {@code port}. A vhost-user back-end is connected now (its features
     * decide what the device offers); {@code onHangup} hears when it goes away later.
     */
    static NetBackend open(VmOptions options, NetPort port, EventLoop control, LinkDownOnHangup onHangup) {
        return switch (options.dataPlane()) {
            case EMULATED, EMULATED_SYNC -> {
                EmulatedNetBackend emulated = new EmulatedNetBackend(port.port());
                emulated.setBusyPoll(TimeUnit.MICROSECONDS.toNanos(options.pollMicros()));
                yield emulated;
            }
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
                    vu = new VhostUserNetBackend(endpoint(options), control);
                } catch (VhostUserException e) {
                    throw new ToyVm.VmException(e.getMessage() + "; " + startHint(options));
                } catch (SocketPathException e) {
                    throw new ToyVm.VmException("--socket-listen " + e.getMessage());
                }
                vu.onHangup(onHangup);
                vu.onReconnect(onHangup::reconnected);
                onHangup.watch(vu);
                yield vu;
            }
        };
    }

    /** Client (QEMU's default), client retrying every --reconnect seconds (reconnect-ms), or server (server=on). */
    static VhostUserNetBackend.Endpoint endpoint(VmOptions options) {
        Path socket = Path.of(options.socket());
        if (options.socketListen()) {
            return VhostUserNetBackend.Endpoint.server(socket);
        }
        return VhostUserNetBackend.Endpoint.client(socket, options.reconnectSeconds());
    }

    private static String startHint(VmOptions options) {
        if (options.socketListen()) {
            return "start the back-end as a client: ./vmm vhost-user-backend --client --socket " + options.socket() + " --tap NAME";
        }
        return "start the back-end first: ./vmm vhost-user-backend --socket " + (options.socket() == null ? "PATH" : options.socket())
                + " --tap NAME (or --port memory)" + (options.reconnectSeconds() > 0 ? "" : ", or give --reconnect SECONDS to wait for it");
    }
}
