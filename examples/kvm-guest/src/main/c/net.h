/* virtio-net (virtio 1.2 §5.1) with one queue pair, and a tiny IPv4 stack: ARP, ICMP echo both ways. */
#ifndef VMM4J_NET_H
#define VMM4J_NET_H

#include "virtio.h"

#define VECTOR_NET_CONFIG 0x30
#define VECTOR_NET_RX     0x31
#define VECTOR_NET_TX     0x32

struct ping_reply {
    u16 sequence;
    u16 bytes;
    u32 rtt_ns;
};

/* Brings up the NIC at pci; returns 0 on success (prints why not otherwise). */
int net_init(struct pci_device *pci, u32 my_ip, int event_idx);
/* Handles every received frame and reclaims sent buffers; re-arms interrupts. */
void net_poll(void);
/* Pings target count times, interval apart, answering whatever arrives; fills replies (up to max). */
u32 net_ping(u32 target, u32 count, u32 interval_ms, u32 payload, struct ping_reply *replies, u32 max);
u32 net_echo_requests_answered(void);
/*
 * Sends UDP frames of frame_size bytes to target:port for ms as fast as the TX ring allows, after resolving target by ARP;
 * fills the flood results. 0, or -1 when target did not answer ARP, -2 when the device kept buffers.
 */
int net_tx_flood(u32 target, u16 port, u32 frame_size, u32 ms);
/* Counts the UDP frames to this guest's port that arrive in the next ms, answering the rest (ARP); fills the flood results. */
void net_rx_count(u16 port, u32 ms);
void net_print_up(void);
const char *ip_to_string(u32 ip, char *buf);

#endif
