/** vmm4j vhost-backend: the net data planes (emulated, vhost-net, vhost-user). */
module io.vmm4j.vhost {
    requires transitive io.vmm4j.core;
    requires io.vmm4j.tap;
    requires io.vmm4j.virtio;

    exports io.vmm4j.vhost.kernel;
}
