# Guest session for test/netdm/hardware.int.test.ts (busybox sh, hw layer): hardware (devlink trap) drops from a
# netdevsim device, through Debian's dropwatch and dwdump and ours, side by side. Each output is printed between
# "@@S name@@" and "@@E@@"; pcaps as base64 between "@@NAME-BEGIN@@" and "@@NAME-END@@".
#
# netdevsim's trap generator (drivers/net/netdevsim/dev.c) reports, every 100 ms and for each running port, one
# packet per trap whose action is not drop: a 142-byte UDP datagram 192.0.2.1 -> 198.51.100.1 with random MAC
# addresses and ports. drop_monitor passes on drop and exception traps (fid_miss, blackhole_route once set to trap,
# ttl_value_is_too_small), not control ones (igmp_*). The port is up only while a step wants drops ("pulse"), and
# devlink's per-trap packet counters, read before and after, say how many the kernel reported in between.
. /guest/lib.sh
set -u
OURS="timeout 120 node /project/bin/dropwatch -l kas"
THEIRS="timeout 120 env LD_PRELOAD=/usr/libexec/coreutils/libstdbuf.so _STDBUF_O=L dropwatch -l kas"
OURS_DW="node /project/bin/dwdump"
DEV=netdevsim/netdevsim1337
TRAPS="fid_miss blackhole_route ttl_value_is_too_small"
# ready FILE N: up to 60 s for the Nth "Kernel monitoring activated" in FILE
ready() {
  i=0
  while [ "$(grep -c 'Kernel monitoring activated' "$1" 2>/dev/null)" -lt "$2" ]; do
    i=$((i + 1)); [ $i -gt 600 ] && { echo "ready $1 $2 timed out" >&2; return 1; }
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
# counts: "TRAP PACKETS" for every trap (devlink's counters of reported packets; device 1337 is the only one)
counts() { /usr/sbin/devlink -s trap show | awk '$1 == "name" { n = $2 } $3 == "packets" { print n, $4 }'; }
# reported BEFORE AFTER: how many packets the kernel reported to drop_monitor in between (drop and exception traps)
reported() {
  awk -v traps=" $TRAPS " 'index(traps, " " $1 " ") { if (FILENAME == ARGV[1]) n -= $2; else n += $2 } END { print n }' "$1" "$2"
}
# hwdrops FILE: the sum of the "N drops at TRAP [hardware]" lines so far
hwdrops() { awk '/^[0-9]+ drops at [a-z_0-9]+ \[hardware\]$/ { n += $1 } END { print n + 0 }' "$1" 2>/dev/null; }
# records FILE: pcap records so far (tcpdump prints one line per record; -Z root: the guest has no tcpdump user)
records() { tcpdump -Z root -nn -r "$1" 2>/dev/null | wc -l; }
# pulse SECONDS: the port up that long, so the trap generator runs, then down again and a little for its last round
pulse() { ip link set "$IF" up; sleep "$1"; ip link set "$IF" down; sleep 0.3; }

# 0. psample, then netdevsim; device 1337 with one port; blackhole_route set to trap (it drops silently by default).
{ insmod /lib/modules/psample.ko && insmod /lib/modules/netdevsim.ko && echo "1337 1" >/sys/bus/netdevsim/new_device; } \
  >/tmp/setup.txt 2>&1
IF=$(ls /sys/bus/netdevsim/devices/netdevsim1337/net/ 2>/dev/null | head -n 1)
/usr/sbin/devlink trap set $DEV trap blackhole_route action trap >>/tmp/setup.txt 2>&1
echo "ifname=$IF ifindex=$(cat /sys/class/net/$IF/ifindex 2>/dev/null)" >>/tmp/setup.txt
grep -E '^(psample|netdevsim) ' /proc/modules | cut -d' ' -f1 >>/tmp/setup.txt
/usr/sbin/devlink trap show >>/tmp/setup.txt 2>&1
sec setup /tmp/setup.txt

# 1. Summary, then packet mode, hardware only: theirs, then ours. Summary: one pulse, stopped by SIGINT once the lines
#    add up to what devlink counted (drop_monitor sends a trap's count a second after its first drop, and at STOP frees
#    what it has not sent). Packet mode: alert limit 6, two of the generator's rounds. Ours does both in one process (a
#    node start costs seconds under TCG); Debian's needs two, since it never resets its alert count and stops only when
#    the count equals the limit, so the summary alerts before would carry it past. Our dwdump listens passively to our
#    packet alerts (text here, JSON in step 2), so the host can hold each packet we print against Wireshark's decode of
#    the same alert, paired by the kernel's timestamp.
# The mode first: the kernel keeps the last one set, and Debian's packet run comes before ours.
SUMMARY='set alertmode summary\nset sw false\nset hw true\nstart\n'
PACKET='set alertmode packet\nset alertlimit 6\nstart\n'
for who in theirs ours; do
  counts >/tmp/summary-$who.before
  if [ $who = theirs ]; then bg "$THEIRS" summary-theirs "$SUMMARY"; else bg "$OURS" dropwatch-ours "$SUMMARY$PACKET"; fi
  out=/tmp/summary-theirs.txt; [ $who = ours ] && out=/tmp/dropwatch-ours.txt
  ready $out 1 && pulse 1.5
  counts >/tmp/summary-$who.after
  until_at_least "hwdrops $out" "$(reported /tmp/summary-$who.before /tmp/summary-$who.after)"
  kill -INT $BG
  if [ $who = theirs ]; then
    finish $BG summary-theirs
    bg "$THEIRS" packet-theirs "set sw false\nset hw true\n$PACKET"
    out=/tmp/packet-theirs.txt
    ready $out 1 && ip link set "$IF" up
    finish $BG packet-theirs
  else
    # Started after the summary part: it would write the summary ALERTs too.
    $OURS_DW -p -w /tmp/passive.pcap 2>/tmp/passive.err &
    PASSIVE=$!
    waitfor /tmp/passive.err 'listening'
    ready $out 2 && ip link set "$IF" up
    finish $BG dropwatch-ours
  fi
  ip link set "$IF" down
  sec summary-$who-before /tmp/summary-$who.before
  sec summary-$who-after /tmp/summary-$who.after
done

# 2. Ours in JSON, packet mode as above; then the passive capture ends.
bg "$OURS -f json" packet-ours-json "set sw false\nset hw true\n$PACKET"
ready /tmp/packet-ours-json.txt 1 && ip link set "$IF" up
finish $BG packet-ours-json
ip link set "$IF" down
sleep 0.3
kill -TERM $PASSIVE; wait $PASSIVE; echo "rc=$?" >>/tmp/passive.err
sec passive /tmp/passive.err

# 3. dwdump -o hw and -o sw, theirs and ours: one pulse (hardware drops) and five datagrams to a closed port (software
#    drops) each, so each capture shows what its origin keeps and what it leaves out.
for run in theirs:hw theirs:sw ours:hw ours:sw; do
  who=${run%:*}; o=${run#*:}; name=dw-$who-$o
  counts >/tmp/$name.before
  if [ $who = theirs ]; then
    # Debian's dwdump says nothing when it is ready: put summary mode back, wait for its CONFIG (packet mode), then
    # a moment for its START.
    echo 'set alertmode summary' | dropwatch >/dev/null 2>&1
    dwdump -o $o -w /tmp/$name.pcap 2>/tmp/$name.err &
    P=$!
    i=0
    while ! dwdump -q 2>/dev/null | grep -q 'Alert mode: packet'; do
      i=$((i + 1)); [ $i -gt 300 ] && { echo "dwdump never configured packet mode" >&2; break; }
      sleep 0.2
    done
    sleep 1
  else
    $OURS_DW -o $o -w /tmp/$name.pcap 2>/tmp/$name.err &
    P=$!
    waitfor /tmp/$name.err 'capturing'
  fi
  pulse 1
  send 5 $name-
  counts >/tmp/$name.after
  want=5; [ $o = hw ] && want=$(reported /tmp/$name.before /tmp/$name.after)
  if [ $who = ours ]; then
    until_at_least "records /tmp/$name.pcap" $((want + 1))
  else
    # Debian's dwdump writes its pcap through stdio: nothing to watch until it exits, so a pause stands in.
    sleep 2
  fi
  kill -INT $P; wait $P; echo "rc=$?" >>/tmp/$name.err
  echo "reported=$(reported /tmp/$name.before /tmp/$name.after)" >>/tmp/$name.err
  sec $name /tmp/$name.err
done

emit PASSIVE /tmp/passive.pcap
for run in theirs-hw theirs-sw ours-hw ours-sw; do emit "DW-$(echo $run | tr a-z A-Z)" /tmp/dw-$run.pcap; done
