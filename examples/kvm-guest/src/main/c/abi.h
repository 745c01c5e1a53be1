/*
 * The contract between the VMM (io.vmm4j.guest.GuestAbi, Java) and this guest: where the image
 * and its stack live, the boot parameters the VMM writes before the first instruction, the
 * results the guest writes before it says it is done, and the I/O ports it talks on.
 * Change both sides together; GuestAbiTest compares them.
 */
#ifndef VMM4J_GUEST_ABI_H
#define VMM4J_GUEST_ABI_H

#ifndef __ASSEMBLER__
#include <stdint.h>
#endif

#define ABI_VERSION          2

/* guest-physical layout (the VMM's LongMode tables occupy 0x500-0x6fff) */
#define BOOT_PARAMS_ADDRESS  0x7000
#define RESULTS_ADDRESS      0x8000     /* up to 0xbfff */
#define LOAD_ADDRESS         0x10000    /* the image; entry point = its first byte */
#define IMAGE_LIMIT          0x70000    /* image + bss must end below the stack */
#define STACK_TOP            0x80000
#define HEAP_START           0x100000   /* rings and buffers */

/* I/O ports */
#define PORT_SERIAL          0x3f8      /* 16550 THR: console bytes */
#define PORT_DONE            0x510      /* 32-bit OUT: the guest is done, value = status (0: success) */
#define PORT_PHASE           0x514      /* 32-bit OUT: PHASE_QUIET_BEGIN / PHASE_QUIET_END */
#define PHASE_QUIET_BEGIN    1          /* steady traffic with no console output and no port I/O */
#define PHASE_QUIET_END      2

#define BOOT_MAGIC           0x47344a56u /* "VJ4G" */
#define RESULTS_MAGIC        0x52344a56u /* "VJ4R" */

#define FLAG_EVENT_IDX       (1u << 0)  /* negotiate VIRTIO_F_EVENT_IDX when offered */

/* boot_params.workload: what the guest does after its pings, before serving */
#define WORKLOAD_NONE        0
#define WORKLOAD_TX_FLOOD    1          /* send UDP frames to target_ip:udp_port as fast as the TX ring allows */
#define WORKLOAD_RX_COUNT    2          /* count the UDP frames to guest_ip:udp_port the host floods in */
#define MIN_FLOOD_FRAME      60         /* Ethernet frame bytes without FCS: the shortest frame, ... */
#define MAX_FLOOD_FRAME      1514       /* ... and the longest without GSO (MTU 1500) */

/* status values for PORT_DONE and results.status */
#define STATUS_OK            0
#define STATUS_BAD_PARAMS    1
#define STATUS_NO_DEVICE     2
#define STATUS_DEVICE_ERROR  3
#define STATUS_PANIC         4
#define STATUS_EXCEPTION     0x100      /* + the CPU exception vector */

#define MAX_RTTS             512

#ifndef __ASSEMBLER__
/* written by the VMM at BOOT_PARAMS_ADDRESS; IPv4 addresses as a.b.c.d = (a << 24) | ... */
struct boot_params {
    uint32_t magic;
    uint32_t abi_version;
    uint64_t tsc_khz;           /* KVM_GET_TSC_KHZ of the vCPU */
    uint32_t guest_ip;
    uint32_t target_ip;         /* whom to ping */
    uint32_t ping_count;
    uint32_t ping_interval_ms;
    uint32_t ping_size;         /* ICMP payload bytes, >= 8 */
    uint32_t serve_ms;          /* stay up answering for this long after the pings */
    uint32_t flags;             /* FLAG_* */
    uint32_t workload;          /* WORKLOAD_* */
    uint32_t frame_size;        /* tx flood: Ethernet frame bytes without FCS (14 + 20 + 8 + payload), MIN..MAX_FLOOD_FRAME */
    uint32_t flood_ms;          /* how long the flood or the count lasts */
    uint32_t udp_port;          /* tx flood: the destination port; rx count: the port counted */
    uint32_t reserved;
};

/* written by the guest at RESULTS_ADDRESS before it writes PORT_DONE */
struct guest_results {
    uint32_t magic;
    uint32_t status;
    uint64_t features;          /* virtio-net features acked */
    uint32_t pings_sent;
    uint32_t pings_received;
    uint32_t echo_requests_answered;
    uint32_t kicks;             /* notify writes the guest made */
    uint32_t config_interrupts;
    uint32_t rx_interrupts;
    uint32_t tx_interrupts;
    uint32_t timer_interrupts;
    uint32_t rng_length;        /* bytes virtio-rng gave, 0 if none */
    uint8_t  rng[16];
    uint32_t rtt_count;
    uint32_t rtt_ns[MAX_RTTS];  /* round-trip times of the replies, in order */
    char     error[128];        /* what went wrong when status != 0 */
    /* the flood workloads (WORKLOAD_TX_FLOOD, WORKLOAD_RX_COUNT) */
    uint64_t flood_frames;      /* flood frames sent (every one came back used), or UDP frames to udp_port counted */
    uint64_t flood_bytes;       /* their Ethernet bytes */
    uint64_t flood_ns;          /* tx: first publish to the last buffer back; rx: the counting window (TSC) */
    uint64_t flood_other_frames; /* rx: other frames received in the window (ARP, IPv6, ...) */
    uint32_t flood_kicks;       /* notify writes during the flood or count */
    uint32_t flood_interrupts;  /* rx and tx interrupts during it */
    uint64_t frames_transmitted; /* every frame the guest queued for sending, the flood's and its stack's (ARP, ICMP) */
    uint64_t frames_received;   /* every frame the device handed the guest */
};
#endif

#endif
