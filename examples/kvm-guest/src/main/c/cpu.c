/* The CPU side: an IDT for every vector, the local APIC, its timer calibrated against the TSC, sleeping in HLT. */
#include "guest.h"

/* SDM 3A §6.14.1: 64-bit IDT gate descriptor */
struct idt_gate {
    u16 offset_low;
    u16 selector;
    u8 ist;
    u8 type_attributes;
    u16 offset_mid;
    u32 offset_high;
    u32 reserved;
} __attribute__((packed));

struct idt_pointer {
    u16 limit;
    u64 base;
} __attribute__((packed));

/* what start.S pushed, from the stack pointer upwards */
struct isr_frame {
    u64 r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
    u64 vector, error;
    u64 rip, cs, rflags, rsp, ss;
};

/* local APIC registers (SDM 3A §11.4.1, Table 11-1), at the default base */
#define LAPIC_BASE        0xfee00000ull
#define LAPIC_TPR         0x080
#define LAPIC_EOI         0x0b0
#define LAPIC_SVR         0x0f0
#define LAPIC_LVT_TIMER   0x320
#define LAPIC_TIMER_INIT  0x380
#define LAPIC_TIMER_COUNT 0x390
#define LAPIC_TIMER_DIV   0x3e0
#define LVT_MASKED        (1u << 16)

extern const u64 isr_stubs[256];
static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler handlers[256];
static u64 apic_ticks_per_ms;

static u32 lapic_read(u32 reg) { return mmio_read32(LAPIC_BASE + reg); }
static void lapic_write(u32 reg, u32 value) { mmio_write32(LAPIC_BASE + reg, value); }

void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }

static void on_timer(void) {
    results->timer_interrupts++;
}

void set_irq_handler(u8 vector, irq_handler handler) { handlers[vector] = handler; }

static const char *const exception_names[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound", "#UD invalid opcode",
    "#NM device not available", "#DF double fault", "coprocessor overrun", "#TS invalid TSS", "#NP segment not present",
    "#SS stack fault", "#GP general protection", "#PF page fault", "reserved", "#MF x87 error", "#AC alignment check",
    "#MC machine check", "#XM SIMD error", "#VE virtualization", "#CP control protection",
};

void isr_dispatch(struct isr_frame *f) {
    if (f->vector < 32) {
        u64 cr2;
        __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
        const char *name = exception_names[f->vector] ? exception_names[f->vector] : "reserved";
        fail(STATUS_EXCEPTION + (u32)f->vector, "CPU exception %u (%s), error code 0x%lx, rip 0x%lx, rsp 0x%lx, cr2 0x%lx",
             (unsigned)f->vector, name, (unsigned long)f->error, (unsigned long)f->rip, (unsigned long)f->rsp,
             (unsigned long)cr2);
    }
    if (f->vector == VECTOR_SPURIOUS) {
        return; /* SDM 3A §11.9: no EOI for a spurious interrupt */
    }
    if (handlers[f->vector]) {
        handlers[f->vector]();
    }
    lapic_eoi();
}

void cpu_init(void) {
    for (int v = 0; v < 256; v++) {
        u64 handler = isr_stubs[v];
        idt[v].offset_low = (u16)handler;
        idt[v].selector = 0x08;            /* the VMM's 64-bit code segment */
        idt[v].ist = 0;
        idt[v].type_attributes = 0x8e;     /* present, DPL 0, 64-bit interrupt gate */
        idt[v].offset_mid = (u16)(handler >> 16);
        idt[v].offset_high = (u32)(handler >> 32);
        idt[v].reserved = 0;
    }
    struct idt_pointer pointer = {sizeof idt - 1, (u64)idt};
    __asm__ volatile("lidt %0" : : "m"(pointer));
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, 0x100 | VECTOR_SPURIOUS);  /* APIC software enable (SDM 3A §11.9) */
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VECTOR_TIMER);
    set_irq_handler(VECTOR_TIMER, on_timer);
}

u64 ms_to_tsc(u64 ms) { return ms * params->tsc_khz; }

u64 tsc_to_ns(u64 ticks) { return ticks * 1000000ull / params->tsc_khz; }

/* Counts the one-shot timer down for 10 ms of TSC: the APIC timer's rate is not architectural. */
void timer_calibrate(void) {
    lapic_write(LAPIC_TIMER_DIV, 0xb);                 /* divide by 1 (SDM 3A §11.5.4) */
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VECTOR_TIMER);
    lapic_write(LAPIC_TIMER_INIT, 0xffffffffu);
    u64 start = rdtsc();
    u64 span = ms_to_tsc(10);
    while (rdtsc() - start < span) {
        __asm__ volatile("pause");
    }
    u32 left = lapic_read(LAPIC_TIMER_COUNT);
    lapic_write(LAPIC_TIMER_INIT, 0);
    apic_ticks_per_ms = (0xffffffffull - left) / 10;
    if (apic_ticks_per_ms == 0) {
        fail(STATUS_PANIC, "the local APIC timer did not count");
    }
    lapic_write(LAPIC_LVT_TIMER, VECTOR_TIMER);        /* one-shot, unmasked */
}

void wait_until(u64 deadline_tsc) {
    u64 now = rdtsc();
    if (now >= deadline_tsc) {
        return;
    }
    u64 ticks = (deadline_tsc - now) * apic_ticks_per_ms / params->tsc_khz + 1;
    if (ticks > 0xffffffffull) {
        ticks = 0xffffffffull;
    }
    lapic_write(LAPIC_TIMER_INIT, (u32)ticks);
    /* STI's one-instruction shadow: an interrupt pending since the caller's checks wakes HLT at once */
    __asm__ volatile("sti; hlt; cli" : : : "memory");
}

void phase(u32 which) {
    outl(PORT_PHASE, which);
}
