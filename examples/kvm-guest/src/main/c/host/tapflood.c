/*
 * tapflood: the raw-tap ceiling of ./vmm compare --vcpu kvm, measured in C with one syscall per
 * frame, as the data planes move them. Prints one line: frames=N bytes=B errors=E seconds=S
 *
 *   tapflood write FD HDR SECONDS HEXFRAME  write() HDR zero bytes (a virtio-net header asking for
 *                                           no offloads) and the frame, one frame per call
 *   tapflood read FD HDR SECONDS            read() frames, one per call, counting them
 *   tapflood send SRC DST PORT PAYLOAD SECONDS [MAX]
 *                                           UDP datagrams of PAYLOAD bytes from SRC to DST:PORT
 *                                           (sendmmsg, 64 per call), at most MAX of them
 *
 * FD is a tap the caller opened and handed down (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR with an
 * HDR-byte vnet header, as the data planes have it); anything else is refused.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME   65536
#define SEND_BATCH  64

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void usage(void) {
    fprintf(stderr, "usage: tapflood write FD HDR SECONDS HEXFRAME | read FD HDR SECONDS | send SRC DST PORT PAYLOAD SECONDS [MAX]\n");
    exit(2);
}

static long number(const char *what, const char *text, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < min || v > max) {
        fprintf(stderr, "tapflood: %s '%s' is not a whole number in %ld..%ld\n", what, text, min, max);
        exit(2);
    }
    return v;
}

static double seconds_arg(const char *text) {
    char *end;
    double v = strtod(text, &end);
    if (*end || end == text || !(v > 0 && v <= 3600)) {
        fprintf(stderr, "tapflood: SECONDS '%s' is not in (0, 3600]\n", text);
        exit(2);
    }
    return v;
}

/* The inherited tap, checked: a tap without packet info and with a vnet header of hdr bytes (linux/if_tun.h). */
static int tap_fd(const char *fd_text, const char *hdr_text, int *hdr) {
    int fd = (int)number("FD", fd_text, 0, 1 << 20);
    *hdr = (int)number("HDR", hdr_text, 10, 64);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
        fprintf(stderr, "tapflood: fd %d is not a tun/tap device (TUNGETIFF: %s)\n", fd, strerror(errno));
        exit(2);
    }
    int want = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if ((ifr.ifr_flags & want) != want) {
        fprintf(stderr, "tapflood: %s has flags 0x%x, not IFF_TAP | IFF_NO_PI | IFF_VNET_HDR\n", ifr.ifr_name, ifr.ifr_flags & 0xffff);
        exit(2);
    }
    int size = 0;
    if (ioctl(fd, TUNGETVNETHDRSZ, &size) < 0 || size != *hdr) {
        fprintf(stderr, "tapflood: %s has a %d-byte vnet header, not %d\n", ifr.ifr_name, size, *hdr);
        exit(2);
    }
    return fd;
}

static void report(unsigned long long frames, unsigned long long bytes, unsigned long long errors, double seconds) {
    printf("frames=%llu bytes=%llu errors=%llu seconds=%.6f\n", frames, bytes, errors, seconds);
}

static int write_mode(int argc, char **argv) {
    if (argc != 6) usage();
    int hdr;
    int fd = tap_fd(argv[2], argv[3], &hdr);
    double duration = seconds_arg(argv[4]);
    const char *hex = argv[5];
    size_t n = strlen(hex) / 2;
    if (strlen(hex) % 2 || n < 14 || n > MAX_FRAME - 64) {
        fprintf(stderr, "tapflood: HEXFRAME must be an Ethernet frame in hex (14 to %d bytes)\n", MAX_FRAME - 64);
        return 2;
    }
    static unsigned char buffer[MAX_FRAME];
    memset(buffer, 0, (size_t)hdr);
    for (size_t i = 0; i < n; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
            fprintf(stderr, "tapflood: HEXFRAME has a non-hex digit at %zu\n", 2 * i);
            return 2;
        }
        buffer[hdr + i] = (unsigned char)byte;
    }
    size_t length = (size_t)hdr + n;
    unsigned long long frames = 0, errors = 0;
    int first_error = 0;
    double start = now_seconds(), end = start + duration, t = start;
    while (t < end) {
        for (int i = 0; i < 64; i++) {
            if (write(fd, buffer, length) == (ssize_t)length) {
                frames++;
            } else {
                if (!first_error) first_error = errno;
                errors++;
            }
        }
        t = now_seconds();
    }
    if (first_error) fprintf(stderr, "tapflood: write: %s (%llu times)\n", strerror(first_error), errors);
    report(frames, frames * n, errors, t - start);
    return 0;
}

static int read_mode(int argc, char **argv) {
    if (argc != 5) usage();
    int hdr;
    int fd = tap_fd(argv[2], argv[3], &hdr);
    double duration = seconds_arg(argv[4]);
    static unsigned char buffer[MAX_FRAME];
    unsigned long long frames = 0, bytes = 0, errors = 0;
    double start = now_seconds(), end = start + duration;
    for (double t = start; t < end; t = now_seconds()) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = poll(&p, 1, (int)((end - t) * 1000) + 1);
        if (ready <= 0) continue;
        for (;;) {   /* the fd is non-blocking: read until the tap is empty */
            ssize_t r = read(fd, buffer, sizeof buffer);
            if (r < 0) {
                if (errno != EAGAIN && errno != EINTR) errors++;
                break;
            }
            if (r > hdr) {
                frames++;
                bytes += (unsigned long long)(r - hdr);
            }
        }
    }
    report(frames, bytes, errors, now_seconds() - start);
    return 0;
}

static int send_mode(int argc, char **argv) {
    if (argc != 7 && argc != 8) usage();
    struct sockaddr_in source = {.sin_family = AF_INET}, destination = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, argv[2], &source.sin_addr) != 1 || inet_pton(AF_INET, argv[3], &destination.sin_addr) != 1) {
        fprintf(stderr, "tapflood: SRC '%s' and DST '%s' must be IPv4 addresses\n", argv[2], argv[3]);
        return 2;
    }
    destination.sin_port = htons((uint16_t)number("PORT", argv[4], 1, 65535));
    size_t payload = (size_t)number("PAYLOAD", argv[5], 0, 65507);
    double duration = seconds_arg(argv[6]);
    unsigned long long max = argc == 8 ? (unsigned long long)number("MAX", argv[7], 1, 1L << 40) : ~0ull;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&source, sizeof source) < 0
            || connect(s, (struct sockaddr *)&destination, sizeof destination) < 0) {
        fprintf(stderr, "tapflood: UDP socket %s -> %s:%s: %s\n", argv[2], argv[3], argv[4], strerror(errno));
        return 1;
    }
    static unsigned char data[65507];
    for (size_t i = 0; i < payload; i++) data[i] = (unsigned char)i;
    struct iovec iov = {.iov_base = data, .iov_len = payload};
    struct mmsghdr messages[SEND_BATCH];
    memset(messages, 0, sizeof messages);
    for (int i = 0; i < SEND_BATCH; i++) {
        messages[i].msg_hdr.msg_iov = &iov;
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long frames = 0, errors = 0;
    int first_error = 0;
    double start = now_seconds(), end = start + duration, t = start;
    while (t < end && frames < max) {
        unsigned long long left = max - frames;
        int batch = left < SEND_BATCH ? (int)left : SEND_BATCH;
        int sent = sendmmsg(s, messages, (unsigned int)batch, 0);
        if (sent > 0) {
            frames += (unsigned long long)sent;
        } else {
            if (!first_error) first_error = errno;
            errors++;
        }
        t = now_seconds();
    }
    if (first_error) fprintf(stderr, "tapflood: sendmmsg: %s (%llu times)\n", strerror(first_error), errors);
    report(frames, frames * payload, errors, t - start);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(argv[1], "write")) return write_mode(argc, argv);
    if (!strcmp(argv[1], "read")) return read_mode(argc, argv);
    if (!strcmp(argv[1], "send")) return send_mode(argc, argv);
    usage();
    return 2;
}
