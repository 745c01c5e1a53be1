/** vmm4j tap-bridge: TAP devices with vnet headers and offloads, bridges, packet ports. */
module io.vmm4j.tap {
    requires transitive io.vmm4j.core;

    exports io.vmm4j.tap;
}
