/** vmm4j vhost-backend: the net data planes (emulated, vhost-net, vhost-user) and the queue engine the emulated one and the vhost-user daemon run. */
module io.vmm4j.vhost {
    requires transitive io.vmm4j.core;
    requires transitive io.vmm4j.tap;
    requires transitive io.vmm4j.virtio;
    requires org.slf4j;

    exports io.vmm4j.vhost;
    exports io.vmm4j.vhost.emulated;
    exports io.vmm4j.vhost.engine;
    exports io.vmm4j.vhost.kernel;
    exports io.vmm4j.vhost.user;
}
