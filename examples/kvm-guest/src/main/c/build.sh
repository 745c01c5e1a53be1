#!/bin/sh
# Builds the freestanding KVM test guest into a flat binary: ./build.sh OUTPUT_BINARY [WORK_DIR]
# Run by the Maven build (examples/kvm-guest); without gcc it says so and builds nothing, and
# ./vmm run --vcpu kvm then reports the missing image in one line.
set -eu
src="$(cd "$(dirname "$0")" && pwd)"
out="$1"
work="${2:-$(dirname "$out")}"
if ! command -v gcc >/dev/null 2>&1 || ! command -v objcopy >/dev/null 2>&1; then
    echo "[kvm-guest] gcc/objcopy not found: the KVM guest image is not built (apt-get install gcc binutils)" >&2
    exit 0
fi
mkdir -p "$work" "$(dirname "$out")"
# -mno-red-zone: interrupts arrive on the same stack; -mgeneral-regs-only: no SSE state to save
gcc -std=gnu11 -Os -Wall -Wextra -Werror -ffreestanding -fno-strict-aliasing -fno-pic -fno-pie -no-pie \
    -mno-red-zone -mgeneral-regs-only -fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
    -nostdlib -static -T "$src/guest.ld" -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
    -o "$work/kvm-guest.elf" "$src"/*.S "$src"/*.c
objcopy -O binary "$work/kvm-guest.elf" "$out"
echo "[kvm-guest] $(wc -c < "$out") bytes -> $out"
