/* Freestanding helpers: types, port and MMIO accessors, barriers, the console and the heap. */
#ifndef VMM4J_GUEST_H
#define VMM4J_GUEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include "abi.h"

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/*
 * Device registers: one plain mov of exactly the access size through a register holding the
 * full 64-bit address (KVM decodes the instruction to emulate the access; an absolute 32-bit
 * displacement would sign-extend addresses above 2 GiB).
 */
static inline u8 mmio_read8(u64 a) { u8 v; __asm__ volatile("movb (%1), %0" : "=q"(v) : "r"(a) : "memory"); return v; }
static inline u16 mmio_read16(u64 a) { u16 v; __asm__ volatile("movw (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline u32 mmio_read32(u64 a) { u32 v; __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline u64 mmio_read64(u64 a) { u64 v; __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline void mmio_write8(u64 a, u8 v) { __asm__ volatile("movb %1, (%0)" : : "r"(a), "q"(v) : "memory"); }
static inline void mmio_write16(u64 a, u16 v) { __asm__ volatile("movw %1, (%0)" : : "r"(a), "r"(v) : "memory"); }
static inline void mmio_write32(u64 a, u32 v) { __asm__ volatile("movl %1, (%0)" : : "r"(a), "r"(v) : "memory"); }

/* x86 is TSO: stores stay ordered and loads stay ordered, only a store then a load may pass (SDM 3A §9.2.2) */
#define barrier() __asm__ volatile("" : : : "memory")
#define full_fence() __asm__ volatile("mfence" : : : "memory")

static inline u64 rdtsc(void) {
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((u64)hi << 32) | lo;
}

static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }

/* runtime.c */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int ksnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void done(u32 status) __attribute__((noreturn));
void fail(u32 status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void *heap_alloc(size_t size, size_t align);      /* zeroed */
void *heap_reserve(size_t size, size_t align);    /* not zeroed: for what is written before it is read */
extern struct guest_results *const results;
extern const struct boot_params *const params;

/* cpu.c: IDT, local APIC and its timer, time from the TSC */
#define VECTOR_TIMER    0x20
#define VECTOR_SPURIOUS 0xff
typedef void (*irq_handler)(void);
void cpu_init(void);
void set_irq_handler(u8 vector, irq_handler handler);
void lapic_eoi(void);
void timer_calibrate(void);
u64 ms_to_tsc(u64 ms);
u64 tsc_to_ns(u64 ticks);
void wait_until(u64 deadline_tsc);      /* sleeps (HLT) until the deadline or any interrupt */
void phase(u32 which);

#endif
