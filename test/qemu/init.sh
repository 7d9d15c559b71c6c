#!/bin/busybox sh
# PID 1 of the qemu guest (copied to /init by setup.sh). It prepares a minimal system, loads
# drop_monitor, runs the one guest script the harness appended as /guest/script.{sh,mjs,js,py} and
# powers off. The script's stdout goes to the second serial port and its stderr to the third, so
# kernel messages on the console (ttyS0) can never interleave with what the test parses; markers
# frame stdout so the harness can tell a finished run from a truncated one.
/bin/busybox --install -s /bin
# SHELL: bash (the guest sessions send datagrams with it) otherwise looks the user up at start, and glibc's failed
# nscd connect is a drop at unix_stream_connect that would mix into the counts the tests make.
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root TERM=dumb LANG=C SHELL=/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# Only emergencies on the console; the cmdline's loglevel=0 covers boot, this covers module loads.
echo 0 >/proc/sys/kernel/printk
# dropwatch -l kas and our symbolizer read real addresses from /proc/kallsyms.
echo 0 >/proc/sys/kernel/kptr_restrict
hostname guest
ip link set lo up

OUT=/dev/ttyS1
ERR=/dev/ttyS2
# Raw: no \n -> \r\n translation, so stdout arrives byte for byte.
stty -F $OUT raw -echo 2>/dev/null
stty -F $ERR raw -echo 2>/dev/null

# The harness checks these lines; a failed insmod is reported, not fatal, so the test can say why.
if insmod /lib/modules/drop_monitor.ko 2>/tmp/insmod.err; then
  echo "@@DWQ-MODULE drop_monitor ok@@" >$ERR
else
  echo "@@DWQ-MODULE drop_monitor failed: $(cat /tmp/insmod.err)@@" >$ERR
fi

[ -f /guest/env ] && . /guest/env
script=$(ls /guest/script.* 2>/dev/null | head -n 1)
case "$script" in
  *.mjs | *.js) runner="node" ;;
  *.py) runner="python3" ;;
  *) runner="sh" ;;
esac

cd /project 2>/dev/null || cd /
echo "@@DWQ-BEGIN@@" >$OUT
if [ -n "$script" ]; then
  $runner "$script" </dev/null >$OUT 2>$ERR
  rc=$?
else
  echo "no /guest/script.* in the initramfs" >$ERR
  rc=127
fi
# A separate open/close: the last close of a serial port waits for its transmit buffer to drain,
# so everything before the END marker has left the guest when the harness sees it.
echo "@@DWQ-END rc=$rc@@" >$OUT
sync
# -no-reboot on the qemu side turns this into a clean exit.
reboot -f
sleep 5
poweroff -f
