package io.vmm4j.cli.vm;

import io.vmm4j.core.testing.HostRequirements;
import io.vmm4j.tap.NetNamespace;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our VMM's vhost-user front-end on OVS-DPDK: ovs-vswitchd-dpdk (private daemons, userspace
 * datapath, PMD on one core, 2 MiB hugepages) with two VMs on {@code dpdkvhostuserclient} ports of
 * one bridge — OVS is the vhost-user client, so each VMM listens ({@code --socket-listen}). They
 * ping each other; ovs-vswitchd is stopped and started again mid-run, both VMs see their back-end
 * go and come back, and the pings resume. Then a third VMM on the deprecated {@code dpdkvhostuser}
 * port type (OVS listens; the VMM connects with {@code --socket ... --reconnect}) pings one of
 * them. Everything is stopped and checked gone at the end: ports, daemons, the hugetlbfs mount,
 * and the hugepage reservation as it was found.
 */
class OvsDpdkVhostUserTest {
    private static final String BRIDGE = "vtdpdkbr";
    private static final int HUGEPAGES = 600;

    private NetNamespace ns;
    private OvsSandbox ovs;
    private Hugepages huge;

    @BeforeEach
    void startOvsDpdk() throws Exception {
        HostRequirements.requireTapsAndNamespaces("OVS-DPDK in a network namespace");
        OvsSandbox.require(true);
        huge = Hugepages.reserve(HUGEPAGES, 256, "dpdk-socket-mem=512 needs 256");
        HostRequirements.require(huge.problem() == null, "2 MiB hugepages for OVS-DPDK: " + huge.problem());
        ns = NetNamespace.create(ToyVmNetworkTest.unique("vtod"));
        Map<String, String> config = new LinkedHashMap<>();
        config.put("dpdk-init", "true");
        config.put("dpdk-extra", "--no-pci"); // no NICs: vhost-user ports only
        config.put("dpdk-socket-mem", "512");
        // one core for DPDK's main lcore and the PMD thread; the PMD sleeps up to 1 ms when idle (OVS 3.1
        // pmd-maxsleep), so that it does not spin a core of a shared 2-core machine
        config.put("dpdk-lcore-mask", "0x1");
        config.put("pmd-cpu-mask", "0x1");
        config.put("pmd-maxsleep", "1000");
        ovs = OvsSandbox.start(ns.name(), true, config);
        ovs.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev");
    }

    @AfterEach
    void stopAll() throws Exception {
        try {
            if (ovs != null) {
                ovs.close();
            }
        } finally {
            if (ns != null) {
                ns.close();
            }
            if (huge != null) {
                huge.close();
            }
        }
    }

    private static void await(BooleanSupplier condition, long millis, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        while (!condition.getAsBoolean()) {
            assertTrue(System.currentTimeMillis() < deadline, what);
            Thread.sleep(20);
        }
    }

    /** Pings until {@code n} in a row are answered (a vhost-user port forwards a moment after its rings are set up). */
    private static int pingUntilAnswered(ToyVm vm, String target, int n, long millis) throws InterruptedException {
        long deadline = System.currentTimeMillis() + millis;
        int got = 0;
        while (System.currentTimeMillis() < deadline && got < n) {
            got = vm.guest().ping(n, target, 56);
        }
        return got;
    }

    private static long ms(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    private void addClientPort(String port, Path socket) throws Exception {
        ovs.vsctl("add-port", BRIDGE, port, "--", "set", "Interface", port, "type=dpdkvhostuserclient",
                "options:vhost-server-path=" + socket);
    }

    @Test
    void twoVmsOnDpdkVhostUserClientPortsPingAcrossAVswitchdRestartAndTheDeprecatedServerPortStillWorks() throws Exception {
        Path served = ovs.dir().resolve("vm2.sock");
        Path pinger = ovs.dir().resolve("vm1.sock");
        try (VmmProcess vm2 = VmmProcess.start(List.of(), "run", "--backend", "vhost-user", "--socket-listen", served.toString(),
                "--guest-ip", "10.0.3.12", "--mac", "52:54:00:00:03:12", "--count", "0", "--serve", "60")) {
            await(() -> Files.exists(served) || !vm2.alive(), 30_000, "vm2 never listened at " + served);
            addClientPort("vm2", served);
            vm2.awaitOutput("guest: serving at 10.0.3.12", 30);

            VmOptions o = VmOptions.builder().dataPlane(DataPlane.VHOST_USER).count(0).socket(pinger.toString()).socketListen(true)
                    .guestIp("10.0.3.11").mac("52:54:00:00:03:11").build();
            CompletableFuture<ToyVm> made = CompletableFuture.supplyAsync(() -> new ToyVm(o, new PrintStream(OutputStream.nullOutputStream())));
            await(() -> Files.exists(pinger), 30_000, "the VMM never listened at " + pinger);
            addClientPort("vm1", pinger);
            ToyVm vm1;
            try {
                vm1 = made.get(60, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new AssertionError("OVS never connected to the VMM at " + pinger + ":\n" + ovs.log(), e);
            }
            try (vm1) {
                vm1.run();
                assertEquals(5, pingUntilAnswered(vm1, "10.0.3.12", 5, 20_000), "vm1 pings vm2 through OVS-DPDK:\n" + ovs.log()
                        + "\nvm2:\n" + vm2.describe());

                // ovs-vswitchd goes and comes back; the database keeps the ports, the new vswitchd connects to both VMMs again
                long before = vm1.backendConnection().reconnects();
                ovs.stopVswitchd();
                await(() -> !vm1.backendConnection().connected(), 10_000, "vm1 never saw ovs-vswitchd go: " + vm1.backendConnection());
                // the socket's hang-up shows first; the VMM's hang-up listener sets the link down right after it
                await(() -> !vm1.net().linkUp(), 5_000, "the guest's link is down while OVS is away: " + vm1.backendConnection());
                long t0 = System.nanoTime();
                ovs.startVswitchd();
                long started = System.nanoTime();
                await(() -> vm1.backendConnection().reconnects() > before && vm1.net().linkUp(), 30_000,
                        "vm1's back-end did not come back: " + vm1.backendConnection() + "\n" + ovs.log());
                long linkUp = System.nanoTime();
                vm2.awaitOutput("the vhost-user back-end at " + served + " is back", 30);
                long bothUp = System.nanoTime();
                int again = pingUntilAnswered(vm1, "10.0.3.12", 5, 20_000);
                long pinged = System.nanoTime();
                System.out.printf("OVS-DPDK restart: ovs-vswitchd-dpdk started in %d ms, vm1's link up %d ms later, vm2's %d ms after "
                        + "that, 5 pings answered %d ms after both; %s%n", ms(started - t0), ms(linkUp - started), ms(bothUp - linkUp),
                        ms(pinged - bothUp), vm1.backendConnection());
                assertEquals(5, again, "pings resume after the restart: " + vm1.backendConnection() + "\n" + ovs.log() + "\nvm2:\n"
                        + vm2.describe());
                assertTrue(vm2.describe().contains("virtio-net link down"), "vm2 saw its back-end go too:\n" + vm2.describe());
                assertEquals(null, vm1.netTransport().lastError(), "no ring error across the restart");
            }
            ovs.vsctl("del-port", BRIDGE, "vm1");

            // the deprecated type: OVS listens at <vhost-sock-dir>/<port>, the VMM connects
            ovs.vsctl("add-port", BRIDGE, "vhu3", "--", "set", "Interface", "vhu3", "type=dpdkvhostuser");
            Path ovsSocket = ovs.dir().resolve("vhu3"); // vhost-sock-dir defaults to OVS_RUNDIR
            await(() -> Files.exists(ovsSocket), 10_000, "OVS made no socket at " + ovsSocket + "\n" + ovs.log());
            try (VmmProcess vm3 = VmmProcess.start(List.of(), "run", "--backend", "vhost-user", "--socket", ovsSocket.toString(),
                    "--reconnect", "1", "--guest-ip", "10.0.3.13", "--mac", "52:54:00:00:03:13", "--ping", "10.0.3.12", "--count", "5",
                    "--json")) {
                assertEquals(0, vm3.waitFor(60), vm3.describe() + "\n" + ovs.log());
                assertEquals(5, vm3.json().get("ping").get("received").asInt(), vm3.describe());
            }
            ovs.vsctl("del-port", BRIDGE, "vhu3");
            ovs.vsctl("del-port", BRIDGE, "vm2");
            vm2.terminate(30);
        }
        assertEquals(List.of(), ovs.ports(BRIDGE));
        assertEquals(2, ovs.vswitchdStarts());
    }
}
