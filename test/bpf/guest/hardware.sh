# Guest session for test/bpf/hardware.int.test.ts (busybox sh, hw layer): hardware (devlink trap) drops from a
# netdevsim device, seen by our bpf backend and by NET_DM (Debian's dropwatch) at once, on the same traps. Each output
# is printed between "@@S name@@" and "@@E@@".
#
# netdevsim's trap generator reports, every 100 ms and for each running port, one packet per trap whose action is not
# drop (test/netdm/guest/hardware.sh says more). The port is up only while a step wants drops, and devlink's per-trap
# counters, read before and after, say how many the kernel reported in between.
. /guest/lib.sh
set -u
OURS="timeout 120 node /project/bin/dropwatch -b bpf -l kas"
THEIRS="timeout 120 env LD_PRELOAD=/usr/libexec/coreutils/libstdbuf.so _STDBUF_O=L dropwatch -l kas"
DEV=netdevsim/netdevsim1337
TRAPS="fid_miss blackhole_route ttl_value_is_too_small"
# ready FILE: up to 60 s for "Kernel monitoring activated" in FILE
ready() {
  i=0
  while ! grep -q 'Kernel monitoring activated' "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 600 ] && { echo "ready $1 timed out" >&2; return 1; }
    sleep 0.1
  done
}
# until_at_least COMMAND N: up to 30 s for COMMAND's output (a number) to reach N
until_at_least() {
  i=0
  while [ "$($1)" -lt "$2" ]; do
    i=$((i + 1)); [ $i -gt 300 ] && { echo "'$1' never reached $2" >&2; return 1; }
    sleep 0.1
  done
}
counts() { /usr/sbin/devlink -s trap show | awk '$1 == "name" { n = $2 } $3 == "packets" { print n, $4 }'; }
reported() {
  awk -v traps=" $TRAPS " 'index(traps, " " $1 " ") { if (FILENAME == ARGV[1]) n -= $2; else n += $2 } END { print n }' "$1" "$2"
}
hwdrops() { awk '/^[0-9]+ drops at [a-z_0-9]+ \[hardware\]$/ { n += $1 } END { print n + 0 }' "$1" 2>/dev/null; }

# 0. psample, then netdevsim (unless an earlier session of this boot left them); device 1337 with one port;
#    blackhole_route set to trap.
{
  grep -q '^psample ' /proc/modules || insmod /lib/modules/psample.ko
  grep -q '^netdevsim ' /proc/modules || insmod /lib/modules/netdevsim.ko
  [ -d /sys/bus/netdevsim/devices/netdevsim1337 ] || echo "1337 1" >/sys/bus/netdevsim/new_device
} >/tmp/setup.txt 2>&1
IF=$(ls /sys/bus/netdevsim/devices/netdevsim1337/net/ 2>/dev/null | head -n 1)
ip link set "$IF" down
/usr/sbin/devlink trap set $DEV trap blackhole_route action trap >>/tmp/setup.txt 2>&1
echo "ifname=$IF ifindex=$(cat /sys/class/net/$IF/ifindex 2>/dev/null)" >>/tmp/setup.txt
grep -c devlink_trap_report /sys/kernel/btf/vmlinux >>/tmp/setup.txt
sec setup /tmp/setup.txt

# 1. Summary, hardware only, ours on bpf and theirs on NET_DM at once: one pulse of the port, then SIGINT to each once
#    its lines add up to what devlink counted (NET_DM sends a trap's count a second after its first drop).
SUMMARY='set alertmode summary\nset sw false\nset hw true\nstart\n'
counts >/tmp/summary.before
bg "$OURS" summary-ours "$SUMMARY"
OURS_PID=$BG
bg "$THEIRS" summary-theirs "$SUMMARY"
THEIRS_PID=$BG
ready /tmp/summary-ours.txt && ready /tmp/summary-theirs.txt && {
  ip link set "$IF" up
  sleep 1.5
  ip link set "$IF" down
  sleep 0.3
}
counts >/tmp/summary.after
want=$(reported /tmp/summary.before /tmp/summary.after)
until_at_least "hwdrops /tmp/summary-ours.txt" "$want"
until_at_least "hwdrops /tmp/summary-theirs.txt" "$want"
kill -INT $OURS_PID $THEIRS_PID
finish $OURS_PID summary-ours
finish $THEIRS_PID summary-theirs
sec summary-before /tmp/summary.before
sec summary-after /tmp/summary.after

# 2. Packet mode, hardware only, alert limit 6 (two of the generator's rounds), both at once; then ours in JSON.
PACKET='set sw false\nset hw true\nset alertmode packet\nset alertlimit 6\nstart\n'
bg "$OURS" packet-ours "$PACKET"
OURS_PID=$BG
bg "$THEIRS" packet-theirs "$PACKET"
THEIRS_PID=$BG
ready /tmp/packet-ours.txt && ready /tmp/packet-theirs.txt && ip link set "$IF" up
finish $OURS_PID packet-ours
finish $THEIRS_PID packet-theirs
ip link set "$IF" down
bg "$OURS -f json" packet-json "$PACKET"
ready /tmp/packet-json.txt && ip link set "$IF" up
finish $BG packet-json
ip link set "$IF" down

# 3. Software and hardware drops at once, filtered to hardware ones: origin is tested by dropwatch (the trap program
#    tests the kernel's sets too), so every trap report shows and none of the five datagrams to a closed port, sent
#    before the port goes down and so counted no later than the last trap report.
counts >/tmp/both.before
bg "$OURS" both-ours 'set hw true\nset filter origin == hardware\nstart\n'
ready /tmp/both-ours.txt && {
  ip link set "$IF" up
  send 5
  sleep 1
  ip link set "$IF" down
  sleep 0.3
}
counts >/tmp/both.after
until_at_least "hwdrops /tmp/both-ours.txt" "$(reported /tmp/both.before /tmp/both.after)"
kill -INT $BG
finish $BG both-ours
sec both-before /tmp/both.before
sec both-after /tmp/both.after
