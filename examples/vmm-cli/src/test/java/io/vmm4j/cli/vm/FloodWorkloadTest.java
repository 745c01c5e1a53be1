package io.vmm4j.cli.vm;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A flood workload's values are checked when it is made, and only the C guest on KVM runs one. */
class FloodWorkloadTest {
    @Test
    void eachBadValueIsRefusedWithItsRange() {
        assertEquals(22, new FloodWorkload(FloodWorkload.Kind.TX_FLOOD, 64, 1000, 9).payload(), "64 = 14 + 20 + 8 + 22");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new FloodWorkload(FloodWorkload.Kind.TX_FLOOD, 59, 1000, 9));
        assertTrue(e.getMessage().contains("frame size 59 is out of range; allowed: 60 to 1514"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new FloodWorkload(FloodWorkload.Kind.RX_COUNT, 64, 0, 9));
        assertTrue(e.getMessage().contains("flood duration 0 ms"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new FloodWorkload(FloodWorkload.Kind.RX_COUNT, 64, 10, 65536));
        assertTrue(e.getMessage().contains("flood port 65536"), e.getMessage());
    }

    @Test
    void theJavaGuestRunsNoFlood() {
        VmOptions options = VmOptions.builder().port(VmOptions.Port.MEMORY)
                .flood(new FloodWorkload(FloodWorkload.Kind.TX_FLOOD, 64, 100, 9)).build();
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        ToyVm.VmException e = assertThrows(ToyVm.VmException.class, () -> new ToyVm(options, quiet).close());
        assertTrue(e.getMessage().contains("--workload tx-flood is a workload of the C guest on KVM: add --vcpu kvm"), e.getMessage());
    }
}
