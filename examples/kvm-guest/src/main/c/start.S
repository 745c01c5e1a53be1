/*
 * Entry and interrupt stubs. The VMM starts the vCPU here in 64-bit mode (its LongMode setup:
 * identity paging, flat segments, interrupts off) with rsp = STACK_TOP and rdi = &boot_params.
 */
#include "abi.h"

    .section .text.start, "ax"
    .globl _start
_start:
    mov $STACK_TOP, %rsp
    mov %rdi, %r12                    /* keep the boot parameters pointer */
    lea __bss_start(%rip), %rdi        /* the VMM loaded only the image: zero the bss */
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    cld
    rep stosb
    mov %r12, %rdi
    call kmain
1:  cli
    hlt
    jmp 1b

/*
 * One stub per vector: push a dummy error code where the CPU pushes none (SDM 3A §6.13: 8,
 * 10-14, 17, 21, 29, 30 have one), push the vector, then the common path saves the caller-saved
 * registers and calls isr_dispatch(frame). The CPU aligned rsp to 16 before its 5-word frame, so
 * after error code, vector and 9 registers the call is 16-byte aligned again.
 */
    .text
    .altmacro
    .macro make_isr n
isr_\n:
    .if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    pushq $\n
    .else
    pushq $0
    pushq $\n
    .endif
    jmp isr_common
    .endm

    .set vector, 0
    .rept 256
    make_isr %vector
    .set vector, vector + 1
    .endr

isr_common:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    mov %rsp, %rdi
    cld
    call isr_dispatch
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    add $16, %rsp                     /* vector and error code */
    iretq

    .macro isr_address n
    .quad isr_\n
    .endm

    .section .rodata
    .balign 8
    .globl isr_stubs
isr_stubs:
    .set vector, 0
    .rept 256
    isr_address %vector
    .set vector, vector + 1
    .endr

    .section .note.GNU-stack, "", @progbits
