/* The little of a C library the guest needs: memory functions, the console, formatted output, the heap, ending. */
#include "guest.h"

struct guest_results *const results = (struct guest_results *)RESULTS_ADDRESS;
const struct boot_params *const params = (const struct boot_params *)BOOT_PARAMS_ADDRESS;

void *memcpy(void *dst, const void *src, size_t n) {
    u8 *d = dst;
    const u8 *s = src;
    if ((((u64)d ^ (u64)s) & 7) == 0) {
        /* eight bytes a move where both line up: where every guest instruction is emulated (kvm_pvm) bytes cost dearly */
        for (; n && ((u64)d & 7); n--) *d++ = *s++;
        for (; n >= 8; n -= 8, d += 8, s += 8) *(volatile u64 *)d = *(const volatile u64 *)s;
    }
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    u8 *d = dst;
    const u8 *s = src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        while (n--) d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    u8 *d = dst;
    if (c == 0) {
        /* eight bytes a store: where every guest instruction is emulated (kvm_pvm) a byte loop costs seconds per MiB */
        for (; n && ((u64)d & 7); n--) *d++ = 0;
        for (; n >= 8; n -= 8, d += 8) *(volatile u64 *)d = 0;
    }
    while (n--) *d++ = (u8)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const u8 *x = a, *y = b;
    for (; n; n--, x++, y++) {
        if (*x != *y) return *x - *y;
    }
    return 0;
}

/* ---- formatted output: %s %c %d %u %x %p with width, '0' and '-' flags, l/ll lengths ---- */

struct sink {
    char *buf;
    size_t size;
    size_t len;
    int console;
};

static void emit(struct sink *s, char c) {
    if (s->console) {
        outb(PORT_SERIAL, (u8)c);  /* one port write, one exit per byte: KVM emulates OUTS per element too */
    } else if (s->len + 1 < s->size) {
        s->buf[s->len] = c;
    }
    s->len++;
}

static void emit_number(struct sink *s, u64 value, int base, int negative, int width, char pad, int left) {
    char digits[24];
    int n = 0;
    do {
        int d = (int)(value % (u64)base);
        digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        value /= (u64)base;
    } while (value);
    int length = n + negative;
    if (negative && pad == '0') emit(s, '-');
    if (!left) {
        for (; width > length; width--) emit(s, pad);
    }
    if (negative && pad != '0') emit(s, '-');
    while (n) emit(s, digits[--n]);
    for (; width > length; width--) emit(s, ' ');
}

static void format(struct sink *s, const char *fmt, va_list ap) {
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            emit(s, *fmt);
            continue;
        }
        fmt++;
        int left = 0;
        char pad = ' ';
        for (;; fmt++) {
            if (*fmt == '-') left = 1;
            else if (*fmt == '0') pad = '0';
            else break;
        }
        int width = 0;
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        int longs = 0;
        while (*fmt == 'l') { longs++; fmt++; }
        switch (*fmt) {
        case 'd': {
            long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
            emit_number(s, v < 0 ? (u64)-v : (u64)v, 10, v < 0, width, pad, left);
            break;
        }
        case 'u':
            emit_number(s, longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned), 10, 0, width, pad, left);
            break;
        case 'x':
            emit_number(s, longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned), 16, 0, width, pad, left);
            break;
        case 'p':
            emit(s, '0');
            emit(s, 'x');
            emit_number(s, (u64)va_arg(ap, void *), 16, 0, width, pad, left);
            break;
        case 'c':
            emit(s, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            int n = 0;
            while (str[n]) n++;
            if (!left) for (; width > n; width--) emit(s, ' ');
            for (int i = 0; i < n; i++) emit(s, str[i]);
            for (; width > n; width--) emit(s, ' ');
            break;
        }
        case '%':
            emit(s, '%');
            break;
        default:
            emit(s, '?');
            break;
        }
    }
}

void kprintf(const char *fmt, ...) {
    struct sink s = {0, 0, 0, 1};
    va_list ap;
    va_start(ap, fmt);
    format(&s, fmt, ap);
    va_end(ap);
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...) {
    struct sink s = {buf, size, 0, 0};
    va_list ap;
    va_start(ap, fmt);
    format(&s, fmt, ap);
    va_end(ap);
    if (size) buf[s.len < size ? s.len : size - 1] = 0;
    return (int)s.len;
}

/* ---- ending ---- */

void done(u32 status) {
    results->magic = RESULTS_MAGIC;
    results->status = status;
    barrier();
    outl(PORT_DONE, status);  /* the VMM stops this vCPU during this exit */
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}

void fail(u32 status, const char *fmt, ...) {
    struct sink s = {results->error, sizeof results->error, 0, 0};
    va_list ap;
    va_start(ap, fmt);
    format(&s, fmt, ap);
    va_end(ap);
    results->error[s.len < sizeof results->error ? s.len : sizeof results->error - 1] = 0;
    kprintf("guest: failed: %s\n", results->error);
    done(status);
}

/* ---- heap: a bump allocator over RAM from HEAP_START; nothing is ever freed ---- */

static u64 heap_next = HEAP_START;

void *heap_reserve(size_t size, size_t align) {
    u64 at = (heap_next + align - 1) & ~(u64)(align - 1);
    heap_next = at + size;
    return (void *)at;
}

void *heap_alloc(size_t size, size_t align) {
    void *at = heap_reserve(size, align);
    memset(at, 0, size);
    return at;
}
