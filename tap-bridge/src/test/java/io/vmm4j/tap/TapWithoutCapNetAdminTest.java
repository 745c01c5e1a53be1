package io.vmm4j.tap;

import io.vmm4j.core.linux.Errno;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.atomic.AtomicReference;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real EPERM: capabilities belong to a thread, so a throw-away platform thread drops
 * CAP_NET_ADMIN from its effective set (capset(2)) and then tries to open a tap. Root still opens
 * /dev/net/tun (mode 0600, owner root); TUNSETIFF then fails with EPERM.
 */
class TapWithoutCapNetAdminTest {
    // linux/capability.h
    private static final int LINUX_CAPABILITY_VERSION_3 = 0x20080522;
    private static final int CAP_NET_ADMIN = 12;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle CAPGET = LINKER.downcallHandle(LINKER.defaultLookup().find("capget").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle CAPSET = LINKER.downcallHandle(LINKER.defaultLookup().find("capset").orElseThrow(),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));

    @Test
    void tunsetiffWithoutCapNetAdminSaysWhatToDo() throws Exception {
        HostRequirements.requireRoot("the test drops CAP_NET_ADMIN from a root thread");
        HostRequirements.requireFile(TapDevice.TUN_PATH, "load the tun module: modprobe tun");
        String name = ScratchNames.tap();
        AtomicReference<Throwable> outcome = new AtomicReference<>();
        Thread thread = Thread.ofPlatform().name("without-cap-net-admin").start(() -> {
            try {
                dropEffectiveCapNetAdminOfThisThread();
                TapDevice.open(name, 1, TapDevice.VNET_HEADER_V1_SIZE).close();
                outcome.set(new AssertionError("opened tap " + name + " without CAP_NET_ADMIN"));
            } catch (Throwable t) {
                outcome.set(t);
            }
        });
        thread.join();
        TapException e = assertInstanceOf(TapException.class, outcome.get());
        assertEquals(Errno.EPERM, e.errno(), e.getMessage());
        assertTrue(e.getMessage().startsWith("creating tap " + name + " needs CAP_NET_ADMIN: run as root or grant the capability"),
                e.getMessage());
        assertTrue(e.getMessage().contains("MemoryPort"), e.getMessage());
    }

    /** capget, clear CAP_NET_ADMIN in the effective set, capset; pid 0 means the calling thread. */
    private static void dropEffectiveCapNetAdminOfThisThread() throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment header = arena.allocate(8, 4);
            header.set(JAVA_INT, 0, LINUX_CAPABILITY_VERSION_3);
            // two struct __user_cap_data_struct {effective, permitted, inheritable}
            MemorySegment data = arena.allocate(24, 4);
            if ((int) CAPGET.invokeExact(header, data) != 0) {
                throw new AssertionError("capget failed");
            }
            data.set(JAVA_INT, 0, data.get(JAVA_INT, 0) & ~(1 << CAP_NET_ADMIN));
            if ((int) CAPSET.invokeExact(header, data) != 0) {
                throw new AssertionError("capset failed");
            }
        }
    }
}
