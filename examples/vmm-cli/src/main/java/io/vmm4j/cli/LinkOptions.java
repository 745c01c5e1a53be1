package io.vmm4j.cli;

import io.vmm4j.cli.vm.VmOptions;
import picocli.CommandLine.Option;

/**
 * The options {@code ./vmm run} and {@code ./vmm vhost-user-backend} share (a picocli mixin): how
 * many queue pairs the link has, and the host side's address on it. Each command checks the
 * values its own way.
 */
public final class LinkOptions {
    @Option(names = "--queues", defaultValue = "" + VmOptions.DEFAULT_PAIRS,
            description = "virtio-net queue pairs (and tap queues); a VMM and its vhost-user back-end take the same number. "
                    + "Default: ${DEFAULT-VALUE}.")
    int queues;

    @Option(names = "--host-ip", defaultValue = VmOptions.DEFAULT_HOST_IP,
            description = "The host side's ADDRESS/PREFIX (prefix 1..30; without one, /" + VmOptions.DEFAULT_HOST_PREFIX + "): the "
                    + "address a tap this command creates gets, and where the in-memory host answers. Default: ${DEFAULT-VALUE}.")
    String hostIp;

    /** --host-ip as given. */
    String hostIp() {
        return hostIp;
    }

    /** --host-ip with its prefix: /{@value VmOptions#DEFAULT_HOST_PREFIX} when it has none, so that the subnet covers the guest's. */
    String hostCidr() {
        return hostIp.contains("/") ? hostIp : hostIp + "/" + VmOptions.DEFAULT_HOST_PREFIX;
    }

    /** --host-ip without its prefix. */
    String hostAddress() {
        return hostIp.contains("/") ? hostIp.substring(0, hostIp.indexOf('/')) : hostIp;
    }

    int queues() {
        return queues;
    }
}
