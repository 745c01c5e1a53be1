#include "net.h"

#define NET_F_MAC           5
#define NET_F_STATUS        16
#define NET_CONFIG_MAC      0
#define NET_CONFIG_STATUS   6
#define NET_HEADER          12      /* struct virtio_net_hdr_v1 (§5.1.6): VERSION_1 always has num_buffers */
#define BUFFER_SIZE         2048    /* header + the largest frame without GSO or MRG_RXBUF */
#define MAX_RING            256

#define ETHERTYPE_IPV4      0x0800
#define ETHERTYPE_ARP       0x0806
#define IP_PROTO_ICMP       1
#define IP_PROTO_UDP        17
#define ICMP_ECHO_REPLY     0
#define ICMP_ECHO_REQUEST   8
#define PING_IDENTIFIER     0x4d4d
#define ARP_CACHE           8

static struct virtio_device dev;
static struct virtqueue rxq, txq;
static u8 *rx_buffers, *tx_buffers;
static u16 tx_free[MAX_RING];
static u16 tx_free_count;
static u8 tx_holds_flood[MAX_RING];   /* the buffer still holds the flood's frame: no copy before sending it again */
static u8 my_mac[6];
static u32 my_ip;
static u32 echo_answered;
static u8 frame[BUFFER_SIZE];

static struct {
    u32 ip;
    u8 mac[6];
} arp_cache[ARP_CACHE];
static u32 arp_next;

static struct ping_reply *ping_out;
static u32 ping_max, ping_got;
static u32 ping_target;

static void on_config(void) { results->config_interrupts++; }
static void on_rx(void) { results->rx_interrupts++; }
static void on_tx(void) { results->tx_interrupts++; }

static u16 get16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static u32 get32(const u8 *p) { return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3]; }
static void put16(u8 *p, u16 v) { p[0] = (u8)(v >> 8); p[1] = (u8)v; }
static void put32(u8 *p, u32 v) { p[0] = (u8)(v >> 24); p[1] = (u8)(v >> 16); p[2] = (u8)(v >> 8); p[3] = (u8)v; }

/* RFC 1071 Internet checksum */
static u16 checksum(const u8 *p, u32 length) {
    u32 sum = 0;
    for (; length > 1; p += 2, length -= 2) sum += (u32)(p[0] << 8 | p[1]);
    if (length) sum += (u32)(p[0] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (u16)~sum;
}

const char *ip_to_string(u32 ip, char *buf) {
    ksnprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
    return buf;
}

static const u8 *arp_lookup(u32 ip) {
    for (int i = 0; i < ARP_CACHE; i++) {
        if (arp_cache[i].ip == ip) return arp_cache[i].mac;
    }
    return 0;
}

static void arp_learn(u32 ip, const u8 *mac) {
    for (int i = 0; i < ARP_CACHE; i++) {
        if (arp_cache[i].ip == ip) {
            memcpy(arp_cache[i].mac, mac, 6);
            return;
        }
    }
    arp_cache[arp_next].ip = ip;
    memcpy(arp_cache[arp_next].mac, mac, 6);
    arp_next = (arp_next + 1) % ARP_CACHE;
}

/* ---- the device ---- */

static void reclaim_tx(void) {
    u32 id, length;
    while (vq_next_used(&txq, &id, &length)) {
        if (id < txq.size) {   /* a split ring's device could name any id; tx_free holds txq.size */
            tx_free[tx_free_count++] = (u16)id;
        }
    }
}

/* Queues one frame (the header is zero: no offloads); 0 on success. */
static int transmit(const u8 *data, u32 length) {
    if (length < 60) {
        length = 60;  /* the minimum Ethernet frame; the pad bytes are whatever the buffer held */
    }
    reclaim_tx();
    if (tx_free_count == 0) {
        return -1;
    }
    u16 id = tx_free[--tx_free_count];
    u8 *buffer = tx_buffers + (u32)id * BUFFER_SIZE;
    memset(buffer, 0, NET_HEADER);
    memcpy(buffer + NET_HEADER, data, length);
    tx_holds_flood[id] = 0;
    vq_add_buffer(&txq, id, (u64)buffer, NET_HEADER + length, 0);
    vq_publish(&txq);
    results->frames_transmitted++;
    return 0;
}

static u8 *ethernet(u8 *f, const u8 *dst, u16 type) {
    memcpy(f, dst, 6);
    memcpy(f + 6, my_mac, 6);
    put16(f + 12, type);
    return f + 14;
}

static void send_arp(u16 op, const u8 *target_mac, u32 target_ip) {
    static const u8 broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memset(frame, 0, 60);
    u8 *a = ethernet(frame, op == 1 ? broadcast : target_mac, ETHERTYPE_ARP);
    put16(a, 1);                 /* Ethernet */
    put16(a + 2, ETHERTYPE_IPV4);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, my_mac, 6);
    put32(a + 14, my_ip);
    if (op == 1) memset(a + 18, 0, 6); else memcpy(a + 18, target_mac, 6);
    put32(a + 24, target_ip);
    transmit(frame, 14 + 28);
}

/* A 20-byte IPv4 header from us to dst_ip, don't-fragment, TTL 64, its checksum set (RFC 791). */
static void ipv4_header(u8 *ip, u8 protocol, u16 total_length, u16 id, u32 dst_ip) {
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, total_length);
    put16(ip + 4, id);
    put16(ip + 6, 0x4000);       /* don't fragment */
    ip[8] = 64;
    ip[9] = protocol;
    put16(ip + 10, 0);
    put32(ip + 12, my_ip);
    put32(ip + 16, dst_ip);
    put16(ip + 10, checksum(ip, 20));
}

/* An IPv4 + ICMP echo message with payload (copied from data if given); returns the frame length. */
static u32 build_echo(const u8 *dst_mac, u32 dst_ip, u8 type, u16 id, u16 seq, const u8 *data, u32 length, u16 ip_id) {
    u8 *ip = ethernet(frame, dst_mac, ETHERTYPE_IPV4);
    u32 total = 20 + 8 + length;
    ipv4_header(ip, IP_PROTO_ICMP, (u16)total, ip_id, dst_ip);
    u8 *icmp = ip + 20;
    icmp[0] = type;
    icmp[1] = 0;
    put16(icmp + 2, 0);
    put16(icmp + 4, id);
    put16(icmp + 6, seq);
    if (data) memmove(icmp + 8, data, length);
    put16(icmp + 2, checksum(icmp, 8 + length));
    return 14 + total;
}

static void handle_arp(const u8 *a, u32 length) {
    if (length < 28 || get16(a) != 1 || get16(a + 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4) {
        return;
    }
    u16 op = get16(a + 6);
    u32 sender_ip = get32(a + 14);
    u32 target_ip = get32(a + 24);
    if (sender_ip) {
        arp_learn(sender_ip, a + 8);
    }
    if (op == 1 && target_ip == my_ip) {
        u8 mac[6];
        memcpy(mac, a + 8, 6);
        send_arp(2, mac, sender_ip);
    }
}

static void handle_icmp(const u8 *eth, const u8 *ip, const u8 *icmp, u32 length) {
    if (length < 8 || checksum(icmp, length) != 0) {
        return;
    }
    u32 source = get32(ip + 12);
    if (icmp[0] == ICMP_ECHO_REQUEST) {
        u8 mac[6];
        memcpy(mac, eth + 6, 6);  /* answer where it came from: no ARP needed */
        u32 n = build_echo(mac, source, ICMP_ECHO_REPLY, get16(icmp + 4), get16(icmp + 6), icmp + 8, length - 8, get16(ip + 4));
        if (transmit(frame, n) == 0) {
            echo_answered++;
        }
    } else if (icmp[0] == ICMP_ECHO_REPLY && get16(icmp + 4) == PING_IDENTIFIER && source == ping_target && length >= 16) {
        u64 sent;
        memcpy(&sent, icmp + 8, 8);
        if (ping_out && ping_got < ping_max) {
            ping_out[ping_got].sequence = get16(icmp + 6);
            ping_out[ping_got].bytes = (u16)length;
            ping_out[ping_got].rtt_ns = (u32)tsc_to_ns(rdtsc() - sent);
        }
        ping_got++;
    }
}

static void handle_frame(const u8 *f, u32 length) {
    if (length < 14) {
        return;
    }
    u16 type = get16(f + 12);
    if (type == ETHERTYPE_ARP) {
        handle_arp(f + 14, length - 14);
        return;
    }
    if (type != ETHERTYPE_IPV4 || length < 34) {
        return;
    }
    const u8 *ip = f + 14;
    u32 header = (u32)(ip[0] & 0xf) * 4;
    u32 total = get16(ip + 2);
    if ((ip[0] >> 4) != 4 || header < 20 || total < header || 14 + total > length || checksum(ip, header) != 0) {
        return;
    }
    if (get32(ip + 16) != my_ip || (get16(ip + 6) & 0x3fff) != 0) {
        return;  /* not ours, or a fragment */
    }
    if (ip[9] == IP_PROTO_ICMP) {
        handle_icmp(f, ip, ip + header, total - header);
    }
}

void net_poll(void) {
    u32 id, length;
    int again;
    do {
        while (vq_next_used(&rxq, &id, &length)) {
            if (id >= rxq.size) {
                continue;   /* no buffer of ours: nothing to hand back (a split ring's device broke it) */
            }
            results->frames_received++;
            if (length > NET_HEADER && length <= BUFFER_SIZE) {
                handle_frame(rx_buffers + id * BUFFER_SIZE + NET_HEADER, length - NET_HEADER);
            }
            /* the buffer goes straight back */
            vq_add_buffer(&rxq, (u16)id, (u64)(rx_buffers + id * BUFFER_SIZE), BUFFER_SIZE, 1);
        }
        vq_publish(&rxq);
        reclaim_tx();
        vq_enable_interrupts(&rxq);
        vq_enable_interrupts(&txq);
        full_fence();
        again = vq_has_used(&rxq);   /* a frame that came in while interrupts were re-armed */
    } while (again);
}

int net_init(struct pci_device *pci, u32 ip, int event_idx) {
    my_ip = ip;
    if (virtio_probe(&dev, pci) != 0 || !dev.msix_capability || dev.msix_vectors < 3) {
        kprintf("guest: virtio-net at 00:%02x.0 lacks the modern capabilities or 3 MSI-X vectors\n", pci->slot);
        return -1;
    }
    u64 wanted = (1ull << VIRTIO_F_VERSION_1) | (1ull << NET_F_MAC) | (1ull << NET_F_STATUS);
    if (event_idx) {
        wanted |= 1ull << VIRTIO_F_EVENT_IDX;
    }
    wanted |= 1ull << VIRTIO_F_RING_PACKED;   /* like Linux: packed rings whenever the device offers them (§2.8) */
    if (virtio_negotiate(&dev, wanted) != 0) {
        kprintf("guest: virtio-net refused the features (status 0x%x)\n", virtio_status(&dev));
        return -1;
    }
    results->features = dev.features;
    set_irq_handler(VECTOR_NET_CONFIG, on_config);
    set_irq_handler(VECTOR_NET_RX, on_rx);
    set_irq_handler(VECTOR_NET_TX, on_tx);
    virtio_enable_msix(&dev, 3, VECTOR_NET_CONFIG);
    if (virtio_set_config_vector(&dev, 0) != 0 || virtio_setup_queue(&dev, &rxq, 0, MAX_RING, 1) != 0
            || virtio_setup_queue(&dev, &txq, 1, MAX_RING, 2) != 0) {
        kprintf("guest: virtio-net queue setup failed\n");
        return -1;
    }
    /* the device writes what the guest reads of a receive buffer, and the guest writes each frame it sends: no zeroing */
    rx_buffers = heap_reserve((u32)rxq.size * BUFFER_SIZE, 4096);
    tx_buffers = heap_reserve((u32)txq.size * BUFFER_SIZE, 4096);
    for (u16 i = 0; i < rxq.size; i++) {
        vq_add_buffer(&rxq, i, (u64)(rx_buffers + (u32)i * BUFFER_SIZE), BUFFER_SIZE, 1);
    }
    for (u16 i = 0; i < txq.size; i++) {
        tx_free[tx_free_count++] = (u16)(txq.size - 1 - i);
    }
    for (int i = 0; i < 6; i++) {
        my_mac[i] = (dev.features >> NET_F_MAC) & 1 ? virtio_config8(&dev, NET_CONFIG_MAC + (u32)i) : (u8)(i == 0 ? 0x52 : i);
    }
    vq_enable_interrupts(&rxq);
    vq_enable_interrupts(&txq);
    virtio_driver_ok(&dev);
    if (virtio_status(&dev) & STATUS_NEEDS_RESET) {
        kprintf("guest: virtio-net needs a reset right after DRIVER_OK\n");
        return -1;
    }
    vq_publish(&rxq);   /* every receive buffer, one kick */
    return 0;
}

void net_print_up(void) {
    char ip[16];
    int link = (dev.features >> NET_F_STATUS) & 1 ? virtio_config16(&dev, NET_CONFIG_STATUS) & 1 : 1;
    kprintf("guest: virtio-net up: mac %02x:%02x:%02x:%02x:%02x:%02x, ip %s, link %s, rings %u/%u %s, features 0x%lx%s\n",
            my_mac[0], my_mac[1], my_mac[2], my_mac[3], my_mac[4], my_mac[5], ip_to_string(my_ip, ip), link ? "up" : "down",
            rxq.size, txq.size, rxq.packed ? "packed" : "split", (unsigned long)dev.features, rxq.event_idx ? " (EVENT_IDX)" : "");
}

u32 net_echo_requests_answered(void) { return echo_answered; }

u32 net_ping(u32 target, u32 count, u32 interval_ms, u32 payload, struct ping_reply *replies, u32 max) {
    ping_out = replies;
    ping_max = max;
    ping_got = 0;
    ping_target = target;
    if (payload < 8) payload = 8;
    if (payload > 1472) payload = 1472;
    u64 interval = ms_to_tsc(interval_ms);
    u64 start = rdtsc();
    u64 deadline = start + interval * count + ms_to_tsc(5000);
    u64 next_ping = start;
    u64 next_arp = start;
    u32 sent = 0;
    u8 data[1472];
    for (u32 i = 8; i < payload; i++) data[i] = (u8)i;
    while (ping_got < count && rdtsc() < deadline) {
        net_poll();
        u64 now = rdtsc();
        u64 wake = deadline;
        if (sent < count) {
            const u8 *mac = arp_lookup(target);
            if (!mac) {
                if (now >= next_arp) {
                    send_arp(1, 0, target);
                    next_arp = now + ms_to_tsc(1000);
                }
                wake = next_arp;
            } else if (now >= next_ping) {
                memcpy(data, &now, 8);   /* the send time travels in the payload */
                sent++;
                u32 n = build_echo(mac, target, ICMP_ECHO_REQUEST, PING_IDENTIFIER, (u16)sent, data, payload, (u16)sent);
                transmit(frame, n);
                next_ping = now + interval;
                wake = sent < count ? next_ping : deadline;
            } else {
                wake = next_ping;
            }
        }
        if (wake > now + ms_to_tsc(1000)) {
            wake = now + ms_to_tsc(1000);
        }
        wait_until(wake);
    }
    net_poll();
    results->pings_sent += sent;
    ping_out = 0;
    return ping_got < count ? ping_got : count;
}

/* ---- the flood workloads ---- */

#define FLOOD_BATCH         32      /* refill the TX ring, and sleep for, this many buffers at a time */
#define SPIN_US             20      /* poll this long before sleeping on an interrupt: longer, and on 2 cores the vCPU starves the data plane thread it waits for */

/* Resolves ip by ARP within timeout_ms (a request every 500 ms); its MAC, or 0. */
static const u8 *resolve(u32 ip, u32 timeout_ms) {
    u64 end = rdtsc() + ms_to_tsc(timeout_ms);
    u64 next_request = 0;
    for (;;) {
        net_poll();
        const u8 *mac = arp_lookup(ip);
        u64 now = rdtsc();
        if (mac || now >= end) {
            return mac;
        }
        if (now >= next_request) {
            send_arp(1, 0, ip);
            next_request = now + ms_to_tsc(500);
        }
        wait_until(next_request < end ? next_request : end);
    }
}

/* An IPv4 + UDP datagram from port to port with payload bytes into frame, both checksums set (RFC 791, RFC 768); its length. */
static u32 build_udp(const u8 *dst_mac, u32 dst_ip, u16 port, u32 payload) {
    u8 *ip = ethernet(frame, dst_mac, ETHERTYPE_IPV4);
    u32 udp_length = 8 + payload;
    /* RFC 6864: the ID of an atomic (DF, unfragmented) datagram carries nothing */
    ipv4_header(ip, IP_PROTO_UDP, (u16)(20 + udp_length), 0, dst_ip);
    u8 *udp = ip + 20;
    put16(udp, port);
    put16(udp + 2, port);
    put16(udp + 4, (u16)udp_length);
    put16(udp + 6, 0);
    for (u32 i = 0; i < payload; i++) udp[8 + i] = (u8)i;
    /* RFC 768: the checksum covers a pseudo header of the addresses, the protocol and the UDP length */
    u8 pseudo[12 + 8 + MAX_FLOOD_FRAME];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = IP_PROTO_UDP;
    put16(pseudo + 10, (u16)udp_length);
    memcpy(pseudo + 12, udp, udp_length);
    u16 sum = checksum(pseudo, 12 + udp_length);
    put16(udp + 6, sum == 0 ? 0xffff : sum);   /* 0 would mean "no checksum" */
    return 14 + 20 + udp_length;
}

/* Hands every used receive buffer straight back, counting the frames as other traffic; during the TX flood. */
static void recycle_rx(void) {
    u32 id, length;
    int any = 0;
    while (vq_next_used(&rxq, &id, &length)) {
        if (id < rxq.size) {
            results->frames_received++;
            results->flood_other_frames++;
            vq_add_buffer(&rxq, (u16)id, (u64)(rx_buffers + id * BUFFER_SIZE), BUFFER_SIZE, 1);
            any = 1;
        }
    }
    if (any) {
        vq_publish(&rxq);
    }
}

static void flood_begin(void) {
    results->flood_kicks = results->kicks;
    results->flood_interrupts = results->rx_interrupts + results->tx_interrupts;
    phase(PHASE_QUIET_BEGIN);
}

static void flood_end(void) {
    phase(PHASE_QUIET_END);
    results->flood_kicks = results->kicks - results->flood_kicks;
    results->flood_interrupts = results->rx_interrupts + results->tx_interrupts - results->flood_interrupts;
}

int net_tx_flood(u32 target, u16 port, u32 frame_size, u32 ms) {
    const u8 *mac = resolve(target, 3000);
    if (!mac) {
        return -1;
    }
    u32 length = build_udp(mac, target, port, frame_size - 14 - 20 - 8);
    /* header (no offloads) and frame, 8-aligned like the buffers so that copies move 8 bytes at a time */
    static u8 template[NET_HEADER + MAX_FLOOD_FRAME] __attribute__((aligned(8)));
    memset(template, 0, NET_HEADER);
    memcpy(template + NET_HEADER, frame, length);
    /* into every free buffer before the clock starts (one still in flight gets it when it comes back) */
    reclaim_tx();
    for (u16 i = 0; i < tx_free_count; i++) {
        memcpy(tx_buffers + (u32)tx_free[i] * BUFFER_SIZE, template, NET_HEADER + length);
        tx_holds_flood[tx_free[i]] = 1;
    }
    u64 spin = params->tsc_khz * SPIN_US / 1000;
    u64 sent = 0;
    vq_disable_interrupts(&txq);   /* woken only when the ring is full and the device slow (vq_enable_interrupts_after) */
    flood_begin();
    u64 start = rdtsc();
    u64 end = start + ms_to_tsc(ms);
    u64 last_progress = start;
    for (u64 now = start; now < end; now = rdtsc()) {
        u16 taken = vq_take_used(&txq, tx_free + tx_free_count, 0, (u16)(MAX_RING - tx_free_count));
        tx_free_count = (u16)(tx_free_count + taken);
        /* keep the ring full, in batches: one publish (and at most one kick) per batch, or sooner when the device runs dry */
        if (tx_free_count >= FLOOD_BATCH || (tx_free_count && vq_in_flight(&txq) < FLOOD_BATCH)) {
            for (u16 i = 0; i < tx_free_count; i++) {
                u16 id = tx_free[i];
                if (!tx_holds_flood[id]) {   /* it carried an ARP or ICMP frame of the stack meanwhile */
                    memcpy(tx_buffers + (u32)id * BUFFER_SIZE, template, NET_HEADER + length);
                    tx_holds_flood[id] = 1;
                }
            }
            vq_add_buffers(&txq, tx_free, tx_free_count, (u64)tx_buffers, BUFFER_SIZE, NET_HEADER + length, 0);
            sent += tx_free_count;
            tx_free_count = 0;
            vq_publish(&txq);   /* kicks only when the device asked (EVENT_IDX: avail_event / off_wrap; else NO_NOTIFY) */
            last_progress = now;
        } else if (taken) {
            last_progress = now;
        } else if (now - last_progress < spin) {
            __asm__ volatile("pause");
        } else {
            /* the device is slow: sleep until it has used enough for the next batch (or the flood ends) */
            vq_enable_interrupts_after(&txq, (u16)(FLOOD_BATCH - tx_free_count));
            full_fence();
            if (!vq_has_used(&txq)) {
                wait_until(end);
            }
            vq_disable_interrupts(&txq);
            last_progress = rdtsc();
        }
        if (vq_has_used(&rxq)) {
            recycle_rx();   /* the host's answers (ICMP port unreachable) must not starve the receive ring */
        }
    }
    /* every frame handed over comes back used before the clock stops (1 s at most) */
    u64 last_back = rdtsc();
    u64 give_up = last_back + ms_to_tsc(1000);
    while (vq_in_flight(&txq) && rdtsc() < give_up) {
        u16 free_before = tx_free_count;
        reclaim_tx();
        if (tx_free_count != free_before) {
            last_back = rdtsc();
        } else {
            __asm__ volatile("pause");
        }
    }
    flood_end();
    results->frames_transmitted += sent;
    results->flood_frames = sent;
    results->flood_bytes = sent * length;
    results->flood_ns = tsc_to_ns(last_back - start);
    vq_enable_interrupts(&txq);
    return vq_in_flight(&txq) ? -2 : 0;
}

/* Whether f is an IPv4 UDP datagram (unfragmented) to this guest's address and port; whole-field loads, few instructions. */
static int is_udp_to(const u8 *f, u32 length, u16 port) {
    if (length < 14 + 20 + 8 || *(const u16 *)(f + 12) != __builtin_bswap16(ETHERTYPE_IPV4)) {
        return 0;
    }
    const u8 *ip = f + 14;
    u32 header = (u32)(ip[0] & 0xf) * 4;
    return (ip[0] >> 4) == 4 && header >= 20 && length >= 14 + header + 8 && ip[9] == IP_PROTO_UDP
           && *(const u32 *)(ip + 16) == __builtin_bswap32(my_ip)
           && (*(const u16 *)(ip + 6) & __builtin_bswap16(0x3fff)) == 0
           && *(const u16 *)(ip + header + 2) == __builtin_bswap16(port);
}

void net_rx_count(u16 port, u32 ms) {
    u64 spin = params->tsc_khz * SPIN_US / 1000;
    u64 counted = 0, bytes = 0;
    vq_disable_interrupts(&rxq);
    flood_begin();
    u64 start = rdtsc();
    u64 end = start + ms_to_tsc(ms);
    u64 last_progress = start;
    static u16 ids[MAX_RING];
    static u32 lengths[MAX_RING];
    for (u64 now = start; now < end; now = rdtsc()) {
        u16 got = vq_take_used(&rxq, ids, lengths, MAX_RING);
        results->frames_received += got;
        for (u16 i = 0; i < got; i++) {
            const u8 *f = rx_buffers + (u32)ids[i] * BUFFER_SIZE + NET_HEADER;
            u32 length = lengths[i];
            u32 frame_length = length > NET_HEADER && length <= BUFFER_SIZE ? length - NET_HEADER : 0;
            if (is_udp_to(f, frame_length, port)) {
                counted++;
                bytes += frame_length;
            } else {
                results->flood_other_frames++;
                if (frame_length) {
                    handle_frame(f, frame_length);   /* ARP above all: the host must learn where to send */
                }
            }
        }
        vq_add_buffers(&rxq, ids, got, (u64)rx_buffers, BUFFER_SIZE, BUFFER_SIZE, 1);
        if (got) {
            vq_publish(&rxq);   /* the batch back in one publish; a kick only when the device ran out and asked */
            last_progress = now;
        } else if (now - last_progress < spin) {
            __asm__ volatile("pause");
        } else {
            vq_enable_interrupts(&rxq);
            full_fence();
            if (!vq_has_used(&rxq)) {
                wait_until(end);
            }
            vq_disable_interrupts(&rxq);
            last_progress = rdtsc();
        }
    }
    u64 stop = rdtsc();
    flood_end();
    results->flood_frames = counted;
    results->flood_bytes = bytes;
    results->flood_ns = tsc_to_ns(stop - start);
    vq_enable_interrupts(&rxq);
}
