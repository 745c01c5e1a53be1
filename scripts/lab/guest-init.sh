#!/bin/busybox sh
# PID 1 of the vmm4j lab VM (busybox ash inside the initramfs; see scripts/lab/vmm4j-lab).
#
# The host side put these files into the initramfs:
#   /lab/config    shell assignments: LAB_MODE (chroot|guest), LAB_VERBOSE, LAB_CWD, LAB_OUT, LAB_MSIZE
#   /lab/modules   module names in load order (dependencies first); files are /lib/modules/NAME.ko
#   /lab/run.sh    chroot mode: environment + cd + exec of the caller's command (run by the host's /bin/sh)
#   /lab/script.sh, /lab/args   guest mode: the caller's busybox sh script and its quoted arguments
#
# Whatever happens, the outcome goes to the second serial port (ttyS1), which QEMU writes to a
# file the host parses: "vmm4j-lab: exit N" or "vmm4j-lab: setup-error MESSAGE". The console
# (ttyS0) carries the same line for humans, but console text can interleave with kernel and
# program output, so the host never parses it.

/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

. /lab/config

say() { [ "$LAB_VERBOSE" = 1 ] && echo "lab-guest: $*"; return 0; }

report() {
    echo "vmm4j-lab: $1"
    # Closing the tty (end of this redirection) waits until the UART drained the line.
    echo "vmm4j-lab: $1" > /dev/ttyS1
}

power_off() {
    sync
    # Drop our last references to the console: the final close of a tty waits until its
    # output is drained, so the tail of the command's output is not lost to the power-off.
    exec </dev/null >/dev/null 2>&1
    poweroff -f
    sleep 5   # poweroff -f does not return; if it ever does, the kernel panics when init exits
}

finish() { report "exit $1"; power_off; }

fail() {
    echo "vmm4j-lab: setup failed: $*"
    report "setup-error $*"
    power_off
}

load_modules() {
    local m out n=0
    while read -r m; do
        [ -n "$m" ] || continue
        say "insmod $m"
        out=$(insmod "/lib/modules/$m.ko" 2>&1) || fail "insmod $m: $out"
        n=$((n + 1))
    done < /lab/modules
    say "$n modules loaded"
}

# 9p over virtio; the host exports shares by mount tag (hostroot, out).
mount_9p() { # TAG DIR [extra mount options]
    mount -t 9p -o "trans=virtio,version=9p2000.L,msize=$LAB_MSIZE${3:+,$3}" "$1" "$2"
}

run_chroot() {
    local h=/host
    mkdir -p $h /hosttmp
    # The host root, read-only. cache=loose lets the page cache keep what the JVM reads
    # (lib/modules alone is >100 MB); the share is a read-only snapshot, so staleness is moot.
    mount_9p hostroot $h ro,cache=loose || fail "cannot mount the host root (9p tag hostroot)"
    # Keep a handle on the host's /tmp before the guest's own tmpfs hides it.
    mount -o bind $h/tmp /hosttmp || fail "cannot bind the host's /tmp"

    mount -t proc proc $h/proc || fail "mount proc"
    mount -t sysfs sysfs $h/sys || fail "mount sysfs"
    mount -t devtmpfs devtmpfs $h/dev || fail "mount devtmpfs"
    mount -t tmpfs -o mode=1777 tmpfs $h/tmp || fail "mount tmpfs on /tmp"

    # The caller's working directory may live in the host's /tmp: show that directory
    # (read-only) on top of the fresh tmpfs, unless it is /tmp itself or inside --out.
    case "$LAB_CWD" in
        /tmp/*)
            case "$LAB_CWD/" in
                "${LAB_OUT:-//}"/*) ;;   # the out share below makes it visible (and writable)
                *) mkdir -p "$h$LAB_CWD" && mount -o bind "/hosttmp${LAB_CWD#/tmp}" "$h$LAB_CWD" \
                       || fail "cannot show $LAB_CWD inside the guest" ;;
            esac ;;
    esac

    if [ -n "$LAB_OUT" ]; then
        mkdir -p "$h$LAB_OUT" 2>/dev/null   # needed when it lies in the guest's tmpfs /tmp
        mount_9p out "$h$LAB_OUT" || fail "cannot mount --out $LAB_OUT (9p tag out)"
    fi

    say "chroot $h; running the command"
    # Empty environment: run.sh exports exactly what the host passed through.
    /bin/busybox env -i /bin/busybox chroot $h /bin/sh -c "$(cat /lab/run.sh)" </dev/null
    finish $?
}

run_guest() {
    if [ -n "$LAB_OUT" ]; then
        mkdir -p "$LAB_OUT" && mount_9p out "$LAB_OUT" || fail "cannot mount --out $LAB_OUT (9p tag out)"
    fi
    eval "set -- $(cat /lab/args)"
    say "running the guest script"
    cd /
    /bin/busybox env -i PATH=$PATH HOME=/ /bin/sh /lab/script.sh "$@" </dev/null
    finish $?
}

hostname vmm4j-lab
load_modules
ip link set lo up
case "$LAB_MODE" in
    chroot) run_chroot ;;
    guest)  run_guest ;;
    *)      fail "unknown mode '$LAB_MODE'" ;;
esac
