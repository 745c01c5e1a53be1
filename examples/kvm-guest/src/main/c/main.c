/*
 * vmm4j's KVM test guest: firmware and OS in a few KB. It enumerates PCI like firmware, brings up
 * virtio-net like Linux's driver (modern PCI transport, split or packed rings, MSI-X to its own local APIC),
 * pings the host through the VMM's data plane, answers the host's pings, and reports to the VMM
 * through the results block and the done port. On request it floods the host with UDP frames, or counts the
 * host's flood, as fast as the rings allow. During the ping, flood and serve loops it prints nothing
 * and touches no port (the "quiet" phases the VMM measures): kicks are ioeventfds, interrupts
 * irqfds, waiting is HLT with the local APIC timer, all inside KVM.
 */
#include "guest.h"
#include "net.h"
#include "pci.h"

#define PCI_WINDOW      0xc0000000ull
#define PCI_WINDOW_SIZE 0x10000000ull
#define VIRTIO_VENDOR   0x1af4
#define VIRTIO_NET_ID   0x1041
#define VIRTIO_RNG_ID   0x1044

int rng_read(struct pci_device *pci, u8 *out, u32 length);

static struct pci_device devices[PCI_MAX_DEVICES];
static struct ping_reply replies[MAX_RTTS];

static void print_bar(const struct pci_device *d, int i) {
    if (d->bar[i]) {
        kprintf(" BAR%d 0x%lx/%uK", i, (unsigned long)d->bar[i], (unsigned)(d->bar_size[i] / 1024));
    } else {
        kprintf(" BAR%d -", i);
    }
}

static void print_ms(u32 ns) {
    kprintf("%u.%03u", ns / 1000000, (ns / 1000) % 1000);
}

static void ping_phase(void) {
    char target[16];
    ip_to_string(params->target_ip, target);
    phase(PHASE_QUIET_BEGIN);
    u32 got = net_ping(params->target_ip, params->ping_count, params->ping_interval_ms, params->ping_size, replies, MAX_RTTS);
    phase(PHASE_QUIET_END);
    u32 shown = got < MAX_RTTS ? got : MAX_RTTS;
    u32 min = 0xffffffffu, max = 0;
    u64 sum = 0;
    for (u32 i = 0; i < shown; i++) {
        kprintf("guest: %u bytes from %s: icmp_seq=%u time=", replies[i].bytes, target, replies[i].sequence);
        print_ms(replies[i].rtt_ns);
        kprintf(" ms\n");
        results->rtt_ns[i] = replies[i].rtt_ns;
        min = replies[i].rtt_ns < min ? replies[i].rtt_ns : min;
        max = replies[i].rtt_ns > max ? replies[i].rtt_ns : max;
        sum += replies[i].rtt_ns;
    }
    results->rtt_count = shown;
    results->pings_received = got;
    u32 sent = results->pings_sent;
    kprintf("--- %s ping statistics: %u sent, %u received, %u%% loss", target, sent, got, sent ? 100 * (sent - got) / sent : 0);
    if (shown) {
        kprintf(", rtt min/avg/max = ");
        print_ms(min);
        kprintf("/");
        print_ms((u32)(sum / shown));
        kprintf("/");
        print_ms(max);
        kprintf(" ms");
    }
    kprintf("\n");
}

static void serve_phase(void) {
    char me[16];
    kprintf("guest: serving at %s for %u s (ping it from the host)\n", ip_to_string(params->guest_ip, me), params->serve_ms / 1000);
    u64 end = rdtsc() + ms_to_tsc(params->serve_ms);
    phase(PHASE_QUIET_BEGIN);
    for (u64 now = rdtsc(); now < end; now = rdtsc()) {
        net_poll();
        u64 wake = now + ms_to_tsc(1000);
        wait_until(wake < end ? wake : end);
    }
    net_poll();
    phase(PHASE_QUIET_END);
    kprintf("guest: answered %u echo requests\n", net_echo_requests_answered());
}

/* frames in ns as thousands per second, for the console */
static u32 kpps(u64 frames, u64 ns) {
    return ns ? (u32)(frames * 1000000ull / ns) : 0;
}

static void flood_phase(void) {
    char who[16];
    u32 ms = params->flood_ms;
    u16 port = (u16)params->udp_port;
    if (params->workload == WORKLOAD_TX_FLOOD) {
        ip_to_string(params->target_ip, who);
        kprintf("guest: tx flood: %u-byte UDP frames to %s:%u for %u ms\n", params->frame_size, who, port, ms);
        int r = net_tx_flood(params->target_ip, port, params->frame_size, ms);
        if (r == -1) {
            fail(STATUS_DEVICE_ERROR, "tx flood: %s did not answer ARP within 3 s", who);
        }
        kprintf("guest: tx flood: %lu frames (%lu bytes) in %lu us, %u kpps, %u kicks, %u interrupts\n",
                (unsigned long)results->flood_frames, (unsigned long)results->flood_bytes, (unsigned long)(results->flood_ns / 1000),
                kpps(results->flood_frames, results->flood_ns), results->flood_kicks, results->flood_interrupts);
        if (r == -2) {
            fail(STATUS_DEVICE_ERROR, "tx flood: the device had not used every frame 1 s after the flood ended");
        }
    } else {
        ip_to_string(params->guest_ip, who);
        kprintf("guest: rx count: UDP frames to %s:%u for %u ms\n", who, port, ms);
        net_rx_count(port, ms);
        kprintf("guest: rx count: %lu frames (%lu bytes) in %lu us, %u kpps, %lu other frames, %u kicks, %u interrupts\n",
                (unsigned long)results->flood_frames, (unsigned long)results->flood_bytes, (unsigned long)(results->flood_ns / 1000),
                kpps(results->flood_frames, results->flood_ns), (unsigned long)results->flood_other_frames, results->flood_kicks,
                results->flood_interrupts);
    }
}

/* The flood parameters, checked: what is wrong, or 0. */
static const char *bad_flood_params(void) {
    if (params->workload == WORKLOAD_NONE) return 0;
    if (params->workload != WORKLOAD_TX_FLOOD && params->workload != WORKLOAD_RX_COUNT) return "workload is not one of WORKLOAD_*";
    if (params->flood_ms == 0) return "flood_ms is 0";
    if (params->udp_port == 0 || params->udp_port > 65535) return "udp_port is not in 1..65535";
    if (params->workload == WORKLOAD_TX_FLOOD && (params->frame_size < MIN_FLOOD_FRAME || params->frame_size > MAX_FLOOD_FRAME)) {
        return "frame_size is not in MIN_FLOOD_FRAME..MAX_FLOOD_FRAME";
    }
    return 0;
}

void kmain(const struct boot_params *boot) {
    memset(results, 0, sizeof *results);
    if (boot != params || params->magic != BOOT_MAGIC || params->abi_version != ABI_VERSION || params->tsc_khz == 0) {
        fail(STATUS_BAD_PARAMS, "boot parameters at 0x%x are missing or from another ABI version", BOOT_PARAMS_ADDRESS);
    }
    const char *bad = bad_flood_params();
    if (bad) {
        fail(STATUS_BAD_PARAMS, "boot parameters: %s (workload %u, frame_size %u, flood_ms %u, udp_port %u)", bad, params->workload,
             params->frame_size, params->flood_ms, params->udp_port);
    }
    cpu_init();
    timer_calibrate();
    kprintf("guest: vmm4j KVM guest, 64-bit, local APIC on, TSC %lu kHz\n", (unsigned long)params->tsc_khz);

    int n = pci_enumerate(devices, PCI_MAX_DEVICES, PCI_WINDOW, PCI_WINDOW_SIZE);
    struct pci_device *nic = 0, *rng = 0;
    for (int i = 0; i < n; i++) {
        struct pci_device *d = &devices[i];
        kprintf("guest: pci 00:%02x.0 %04x:%04x class %06x", d->slot, d->vendor, d->device, d->class_code);
        print_bar(d, 0);
        print_bar(d, 2);
        kprintf("\n");
        if (d->vendor == VIRTIO_VENDOR && d->device == VIRTIO_NET_ID && !nic) nic = d;
        if (d->vendor == VIRTIO_VENDOR && d->device == VIRTIO_RNG_ID && !rng) rng = d;
    }
    if (rng) {
        int got = rng_read(rng, results->rng, sizeof results->rng);
        if (got > 0) {
            results->rng_length = (u32)got;
            kprintf("guest: virtio-rng gave %d bytes: ", got);
            for (int i = 0; i < got; i++) kprintf("%02x", results->rng[i]);
            kprintf("\n");
        }
    }
    if (!nic) {
        fail(STATUS_NO_DEVICE, "no virtio-net device (1af4:1041) on PCI bus 0");
    }
    if (net_init(nic, params->guest_ip, (params->flags & FLAG_EVENT_IDX) != 0) != 0) {
        fail(STATUS_DEVICE_ERROR, "virtio-net bring-up failed");
    }
    net_print_up();
    if (params->ping_count) {
        ping_phase();
    }
    if (params->workload != WORKLOAD_NONE) {
        flood_phase();
    }
    if (params->serve_ms) {
        serve_phase();
    }
    results->echo_requests_answered = net_echo_requests_answered();
    done(STATUS_OK);
}
