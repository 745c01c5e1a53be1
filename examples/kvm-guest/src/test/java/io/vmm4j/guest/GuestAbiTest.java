package io.vmm4j.guest;

import io.vmm4j.core.testing.HeaderConstants;
import io.vmm4j.core.testing.HostRequirements;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Java side of the guest ABI equals abi.h, and the build produced an image that fits. */
class GuestAbiTest {
    private static final String ABI_H = Path.of("src/main/c/abi.h").toAbsolutePath().toString();

    @Test
    void layoutAndConstantsMatchTheCHeader() throws Exception {
        new HeaderConstants().include("stddef.h", ABI_H)
                .expect("ABI_VERSION", GuestAbi.ABI_VERSION)
                .expect("BOOT_PARAMS_ADDRESS", GuestAbi.BOOT_PARAMS_ADDRESS).expect("RESULTS_ADDRESS", GuestAbi.RESULTS_ADDRESS)
                .expect("LOAD_ADDRESS", GuestAbi.LOAD_ADDRESS).expect("IMAGE_LIMIT", GuestAbi.IMAGE_LIMIT)
                .expect("STACK_TOP", GuestAbi.STACK_TOP).expect("HEAP_START", GuestAbi.HEAP_START)
                .expect("PORT_SERIAL", GuestAbi.PORT_SERIAL).expect("PORT_DONE", GuestAbi.PORT_DONE)
                .expect("PORT_PHASE", GuestAbi.PORT_PHASE).expect("PHASE_QUIET_BEGIN", GuestAbi.PHASE_QUIET_BEGIN)
                .expect("PHASE_QUIET_END", GuestAbi.PHASE_QUIET_END)
                .expect("BOOT_MAGIC", GuestAbi.BOOT_MAGIC).expect("RESULTS_MAGIC", GuestAbi.RESULTS_MAGIC)
                .expect("FLAG_EVENT_IDX", GuestAbi.FLAG_EVENT_IDX)
                .expect("WORKLOAD_NONE", GuestAbi.WORKLOAD_NONE).expect("WORKLOAD_TX_FLOOD", GuestAbi.WORKLOAD_TX_FLOOD)
                .expect("WORKLOAD_RX_COUNT", GuestAbi.WORKLOAD_RX_COUNT)
                .expect("MIN_FLOOD_FRAME", GuestAbi.MIN_FLOOD_FRAME).expect("MAX_FLOOD_FRAME", GuestAbi.MAX_FLOOD_FRAME)
                .expect("STATUS_OK", GuestAbi.STATUS_OK).expect("STATUS_BAD_PARAMS", GuestAbi.STATUS_BAD_PARAMS)
                .expect("STATUS_NO_DEVICE", GuestAbi.STATUS_NO_DEVICE).expect("STATUS_DEVICE_ERROR", GuestAbi.STATUS_DEVICE_ERROR)
                .expect("STATUS_PANIC", GuestAbi.STATUS_PANIC).expect("STATUS_EXCEPTION", GuestAbi.STATUS_EXCEPTION)
                .expect("MAX_RTTS", GuestAbi.MAX_RTTS)
                .expect("offsetof(struct boot_params, abi_version)", GuestAbi.BP_ABI_VERSION)
                .expect("offsetof(struct boot_params, tsc_khz)", GuestAbi.BP_TSC_KHZ)
                .expect("offsetof(struct boot_params, guest_ip)", GuestAbi.BP_GUEST_IP)
                .expect("offsetof(struct boot_params, target_ip)", GuestAbi.BP_TARGET_IP)
                .expect("offsetof(struct boot_params, ping_count)", GuestAbi.BP_PING_COUNT)
                .expect("offsetof(struct boot_params, ping_interval_ms)", GuestAbi.BP_PING_INTERVAL_MS)
                .expect("offsetof(struct boot_params, ping_size)", GuestAbi.BP_PING_SIZE)
                .expect("offsetof(struct boot_params, serve_ms)", GuestAbi.BP_SERVE_MS)
                .expect("offsetof(struct boot_params, flags)", GuestAbi.BP_FLAGS)
                .expect("offsetof(struct boot_params, workload)", GuestAbi.BP_WORKLOAD)
                .expect("offsetof(struct boot_params, frame_size)", GuestAbi.BP_FRAME_SIZE)
                .expect("offsetof(struct boot_params, flood_ms)", GuestAbi.BP_FLOOD_MS)
                .expect("offsetof(struct boot_params, udp_port)", GuestAbi.BP_UDP_PORT)
                .expect("sizeof(struct boot_params)", GuestAbi.BP_SIZE)
                .expect("offsetof(struct guest_results, status)", GuestAbi.R_STATUS)
                .expect("offsetof(struct guest_results, features)", GuestAbi.R_FEATURES)
                .expect("offsetof(struct guest_results, pings_sent)", GuestAbi.R_PINGS_SENT)
                .expect("offsetof(struct guest_results, pings_received)", GuestAbi.R_PINGS_RECEIVED)
                .expect("offsetof(struct guest_results, echo_requests_answered)", GuestAbi.R_ECHO_ANSWERED)
                .expect("offsetof(struct guest_results, kicks)", GuestAbi.R_KICKS)
                .expect("offsetof(struct guest_results, config_interrupts)", GuestAbi.R_CONFIG_INTERRUPTS)
                .expect("offsetof(struct guest_results, rx_interrupts)", GuestAbi.R_RX_INTERRUPTS)
                .expect("offsetof(struct guest_results, tx_interrupts)", GuestAbi.R_TX_INTERRUPTS)
                .expect("offsetof(struct guest_results, timer_interrupts)", GuestAbi.R_TIMER_INTERRUPTS)
                .expect("offsetof(struct guest_results, rng_length)", GuestAbi.R_RNG_LENGTH)
                .expect("offsetof(struct guest_results, rng)", GuestAbi.R_RNG)
                .expect("offsetof(struct guest_results, rtt_count)", GuestAbi.R_RTT_COUNT)
                .expect("offsetof(struct guest_results, rtt_ns)", GuestAbi.R_RTT_NS)
                .expect("offsetof(struct guest_results, error)", GuestAbi.R_ERROR)
                .expect("offsetof(struct guest_results, flood_frames)", GuestAbi.R_FLOOD_FRAMES)
                .expect("offsetof(struct guest_results, flood_bytes)", GuestAbi.R_FLOOD_BYTES)
                .expect("offsetof(struct guest_results, flood_ns)", GuestAbi.R_FLOOD_NS)
                .expect("offsetof(struct guest_results, flood_other_frames)", GuestAbi.R_FLOOD_OTHER_FRAMES)
                .expect("offsetof(struct guest_results, flood_kicks)", GuestAbi.R_FLOOD_KICKS)
                .expect("offsetof(struct guest_results, flood_interrupts)", GuestAbi.R_FLOOD_INTERRUPTS)
                .expect("offsetof(struct guest_results, frames_transmitted)", GuestAbi.R_FRAMES_TRANSMITTED)
                .expect("offsetof(struct guest_results, frames_received)", GuestAbi.R_FRAMES_RECEIVED)
                .expect("sizeof(struct guest_results)", GuestAbi.R_SIZE)
                .expect("RESULTS_ADDRESS + sizeof(struct guest_results) <= 0xc000", 1)
                .verify();
    }

    @Test
    void theBuildProducedAnImageThatFitsBelowItsStack() {
        HostRequirements.requireCommand("gcc", "gcc");
        assertTrue(KvmGuestImage.built(), "gcc is here, so the build must have produced the image");
        byte[] image = KvmGuestImage.bytes();
        assertTrue(image.length > 1024 && GuestAbi.LOAD_ADDRESS + image.length <= GuestAbi.IMAGE_LIMIT, image.length + " bytes");
        assertTrue(image[0] == 0x48 || image[0] == (byte) 0xBC, "it starts with _start's mov to rsp");
    }
}
