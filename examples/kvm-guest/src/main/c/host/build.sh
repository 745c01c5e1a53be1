#!/bin/sh
# Builds tapflood, the host side's raw-tap ceiling for ./vmm compare --vcpu kvm: ./build.sh OUTPUT_BINARY
# Run by the Maven build (examples/kvm-guest) next to the guest; without gcc it says so and builds
# nothing, and the comparison then reports the missing helper in one line.
set -eu
src="$(cd "$(dirname "$0")" && pwd)"
out="$1"
if ! command -v gcc >/dev/null 2>&1; then
    echo "[kvm-guest] gcc not found: the tap ceiling helper (tapflood) is not built (apt-get install gcc)" >&2
    exit 0
fi
mkdir -p "$(dirname "$out")"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$out" "$src/tapflood.c"
echo "[kvm-guest] $(wc -c < "$out") bytes -> $out"
