# Guest session for test/netdm/qemu.int.test.ts (busybox sh): the same steps through Debian's dropwatch and our CLI,
# then backend-level checks. Each output is printed between "@@S name@@" and "@@E@@".
. /guest/lib.sh
set -u
# busybox timeout (and env) exec the tool in its own pid, so $! and kill reach the tool itself. Debian's dropwatch gets
# line-buffered stdout through coreutils' libstdbuf, so its "activated" line reaches the file when it happens and the
# session waits for it as for ours (it used to sleep 4 s instead: its stdout to a file is block-buffered).
OURS="timeout 60 node /project/bin/dropwatch -l kas"
THEIRS="timeout 60 env LD_PRELOAD=/usr/libexec/coreutils/libstdbuf.so _STDBUF_O=L dropwatch -l kas"
# ready WHO FILE: until the tool in FILE says monitoring is on
ready() { waitfor "$2" 'Kernel monitoring activated'; }
# drops FILE: the sum of the "N drops at __udp4_lib_rcv+" lines so far
drops() { awk '/^[0-9]+ drops at __udp4_lib_rcv\+/ { n += $1 } END { print n + 0 }' "$1" 2>/dev/null; }
# waitdrops FILE N: up to 30 s for FILE to report N drops at __udp4_lib_rcv
waitdrops() {
  i=0
  while [ "$(drops "$1")" -lt "$2" ]; do
    i=$((i + 1)); [ $i -gt 300 ] && { echo "waitdrops $1 $2 timed out" >&2; return 1; }
    sleep 0.1
  done
}
# burst COUNT: send, as SCHED_FIFO, so drop_monitor's per-CPU worker cannot send an alert before the burst is over,
# however slow the emulator is (a loaded host once split 100 drops 65 + 35 over two alerts)
burst() { SHELL=/bin/sh chrt -f 10 /guest/send.sh "$@"; }

note kallsyms "$(grep -E ' (__udp4_lib_rcv)$' /proc/kallsyms)"
note modules "$(grep '^drop_monitor ' /proc/modules)"

# 1. Summary, alert limit 1, 100 datagrams: theirs then ours.
for who in theirs ours; do
  tool=$THEIRS; [ $who = ours ] && tool=$OURS
  bg "$tool" summary-$who 'set alertlimit 1\nstart\n'
  ready $who /tmp/summary-$who.txt && burst 100
  finish $BG summary-$who
done

# 2. Exact counts over several kernel intervals: 1000 datagrams in four bursts a little over the kernel's 1 s summary
#    interval apart, then SIGINT once the output has counted them all (30 s at most).
bg "$OURS" count-ours 'start\n'
waitfor /tmp/count-ours.txt 'Kernel monitoring activated' && { send 250; for k in 2 3 4; do sleep 1.1; send 250; done; }
waitdrops /tmp/count-ours.txt 1000
kill -INT $BG
finish $BG count-ours

# 3. show / stats / set alertmode, theirs then ours on the same kernel state.
for who in theirs ours; do
  tool=$THEIRS; [ $who = ours ] && tool=$OURS
  run "$tool" config-$who 'show\nstats\nset alertmode packet\nshow\nset alertmode summary\nshow\n'
done

# 4. Packet mode, alert limit 3, three datagrams; after the limit the same process puts summary mode back (the later
#    steps count summaries), as a second process did before: the output is compared whole, theirs with ours.
for who in theirs ours; do
  tool=$THEIRS; [ $who = ours ] && tool=$OURS
  bg "$tool" packet-$who 'set alertmode packet\nset alertlimit 3\nstart\nset alertmode summary\n'
  ready $who /tmp/packet-$who.txt && { send 1 dropwatch-1; send 1 dropwatch-22; send 1 dropwatch-333; }
  finish $BG packet-$who
done

# 5. Refusals while another dropwatch monitors: EAGAIN on start, EBUSY on config.
bg "$THEIRS" holder 'start\n'
HOLDER=$BG
ready theirs /tmp/holder.txt
for who in theirs ours; do
  tool=$THEIRS; [ $who = ours ] && tool=$OURS
  run "$tool" eagain-$who 'start\n'
  run "$tool" ebusy-$who 'set alertmode packet\n'
done
kill -INT $HOLDER
finish $HOLDER holder

# 6. SIGTERM stops the kernel: a fresh start must then succeed.
bg "$OURS" sigterm-ours 'start\n'
waitfor /tmp/sigterm-ours.txt 'Kernel monitoring activated'
kill -TERM $BG
finish $BG sigterm-ours
bg "$OURS" after-sigterm 'set alertlimit 1\nstart\n'
waitfor /tmp/after-sigterm.txt 'Kernel monitoring activated' && send 5
finish $BG after-sigterm

# 7. SIGKILL leaves the kernel monitoring: start says EAGAIN and how to recover; a STOP from another process does.
bg "$OURS" sigkill-ours 'start\n'
waitfor /tmp/sigkill-ours.txt 'Kernel monitoring activated'
kill -KILL $BG
finish $BG sigkill-ours
run "$OURS" after-sigkill 'start\n'
node /guest/checks.mjs stop=/tmp/recover.txt 2>>/tmp/recover.txt; sec recover /tmp/recover.txt
bg "$OURS" after-recover 'set alertlimit 1\nstart\n'
waitfor /tmp/after-recover.txt 'Kernel monitoring activated' && send 7
finish $BG after-recover

# 8. process.exit without close: the exit hook's synchronous STOP (its own process: it exits), then one process for the
#    rest, each step writing to its own file: a fresh start after the exit, 9. the backend API (flags, refusals, close
#    STOP, config round trip), 10. overflow (packet mode into a small receive buffer while our loop stalls),
#    10b. our CLI, -s -d 5 in packet mode with JSON, its stdout a pipe whose reader stalls through the run, under a flood
#    of 400 datagrams of 32000 bytes: each JSON line carries the payload in hex (about 64 KB), so the output passes
#    the 8 MiB bound with a few hundred drops (rendering JSON is slow under TCG, and its cost goes by bytes, not drops).
node /guest/checks.mjs start-exit=/tmp/exit.txt 2>>/tmp/exit.txt
node /guest/checks.mjs startstop:after-exit=/tmp/exit.txt api=/tmp/api.txt overflow:5000:32768=/tmp/overflow.txt \
  stalled:400:32000:5=/tmp/stalled.txt 2>>/tmp/overflow.txt
sec exit-hook /tmp/exit.txt
sec api /tmp/api.txt
sec overflow /tmp/overflow.txt
sec stalled /tmp/stalled.txt

# 11. Not root: both tools as uid/gid 65534 with no capabilities, through the same steps (busybox has no way to drop
#     to another uid, so node drops to it and runs the tool).
asnobody() {
  node -e 'process.setgroups([]); process.setgid(65534); process.setuid(65534);
    const r = require("child_process").spawnSync(process.argv[1], process.argv.slice(2), { stdio: "inherit" });
    process.exit(r.status === null ? 128 : r.status);' -- "$@"
}
for who in theirs ours; do
  tool=$THEIRS; [ $who = ours ] && tool=$OURS
  run "asnobody $tool" nobody-$who 'show\nstart\n'
done

# 12. Flows: our dropwatch in packet mode, text then JSON, each with our dwdump listening passively (-p) to the same
#     alerts; the host compares each printed flow with what tshark decodes from the capture. Then set trunc 20.
for fmt in text json; do
  dwd=/tmp/flows-$fmt.pcap
  node /project/bin/dwdump -p -w $dwd 2>/tmp/flows-$fmt-dwdump.err &
  D=$!
  waitfor /tmp/flows-$fmt-dwdump.err 'listening'
  timeout 60 node /project/bin/dropwatch -l kas -s -m packet -f $fmt >/tmp/flows-$fmt.txt 2>/tmp/flows-$fmt.err &
  P=$!
  waitfor /tmp/flows-$fmt.err 'Kernel monitoring activated' && SHELL=/bin/sh /guest/flows.sh 2
  # 8 drops: wait for their 8 flows, then give the passive capture a moment for the same alerts
  i=0
  while [ "$(grep -c -E '"l3"|^flow: ' /tmp/flows-$fmt.txt)" -lt 8 ] && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
  sleep 1
  kill -INT $P; wait $P; echo "rc=$?" >>/tmp/flows-$fmt.err
  kill -TERM $D; wait $D
  sec flows-$fmt /tmp/flows-$fmt.txt
  sec flows-$fmt-err /tmp/flows-$fmt.err
  emit "FLOWS-$(echo $fmt | tr a-z A-Z)" $dwd
done
bg "$OURS" flows-trunc 'set alertmode packet\nset trunc 20\nset alertlimit 1\nstart\nset trunc 0\nset alertmode summary\n'
ready ours /tmp/flows-trunc.txt && send 1 dropwatch-trunc
finish $BG flows-trunc

# 13. Flow filters. At the prompt: a filter on the flow is refused in summary mode, then set in packet mode, and
#     summary mode is refused under it; on the command line, one line and exit 1 without -m packet. Then one -s run in
#     packet mode per filter, over the same mix of 3 UDP datagrams each to 127.0.0.1:10, [::1]:9 and 127.0.0.1:9; each
#     run is stopped once it printed the datagrams it keeps (and a second more, for any it should not have kept).
run "$OURS" flowfilter-prompt 'set alertmode summary\nset filter dport == 9\nset alertmode packet\nset filter dport == 9 && l4 == udp\nset alertmode summary\nshow\nset filter none\nset alertmode summary\n'
timeout 60 node /project/bin/dropwatch -l kas -s --filter 'dport == 9' >/tmp/flowfilter-cli.txt 2>&1
echo "rc=$?" >>/tmp/flowfilter-cli.txt
sec flowfilter-cli /tmp/flowfilter-cli.txt
n=0
for kept_filter in '6|dport == 9 && l4 == udp' '3|dport == 10' '6|dst in 127.0.0.0/8' '3|dst == 0:0:0:0:0:0:0:1 && l4 == udp'; do
  n=$((n + 1)); kept=${kept_filter%%|*}; filter=${kept_filter#*|}
  timeout 60 node /project/bin/dropwatch -l kas -s -m packet -f json --filter "$filter" \
    >/tmp/flowfilter-$n.txt 2>/tmp/flowfilter-$n.err &
  P=$!
  waitfor /tmp/flowfilter-$n.err 'Kernel monitoring activated' && { send 3 ff 127.0.0.1 10; send 3 ff6 ::1 9; send 3 ff; }
  i=0
  while [ "$(grep -c '"l4":"udp"' /tmp/flowfilter-$n.txt)" -lt "$kept" ] && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
  sleep 1
  kill -INT $P; wait $P; echo "rc=$?" >>/tmp/flowfilter-$n.err
  note flowfilter-$n-filter "$filter"
  sec flowfilter-$n /tmp/flowfilter-$n.txt
  sec flowfilter-$n-err /tmp/flowfilter-$n.err
done
# 14. The input port, NET_DM's only word on where a drop happened: -m packet --by dev counts the packets into lines by
#     it (a software drop's port comes as an index alone: dev if1), here with a filter on that index; then --by dev in
#     summary mode (named: NET_DM keeps the mode the last run left) is refused in one line naming -m packet.
timeout 60 node /project/bin/dropwatch -l kas -s -m packet --by dev --filter 'ifindex == 1' \
  >/tmp/byport.txt 2>/tmp/byport.err &
P=$!
waitfor /tmp/byport.err 'Kernel monitoring activated' && send 5 byport
i=0
while [ "$(awk '/ drops · dev if1$/ { n += $1 } END { print n + 0 }' /tmp/byport.txt)" -lt 5 ] && [ $i -lt 300 ]; do
  i=$((i + 1)); sleep 0.1
done
kill -INT $P; wait $P; echo "rc=$?" >>/tmp/byport.err
sec byport /tmp/byport.txt
sec byport-err /tmp/byport.err
timeout 60 node /project/bin/dropwatch -l kas -s -m summary --by dev >/tmp/byport-summary.txt 2>&1
echo "rc=$?" >>/tmp/byport-summary.txt
sec byport-summary /tmp/byport-summary.txt
# Leave the kernel in summary mode, as the earlier steps do.
run "$OURS" flowfilter-reset 'set alertmode summary\n'
