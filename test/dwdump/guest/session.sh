# Guest session for test/dwdump/qemu.int.test.ts (busybox sh): Debian's dwdump and ours on the same kernel.
# Text results go between "@@S name@@" and "@@E@@"; files as base64 between "@@NAME-BEGIN@@" and "@@NAME-END@@".
. /guest/lib.sh
set -u
OURS="node /project/bin/dwdump"
N=${DW_N:-50}
# records FILE PREFIX: how many of the datagrams PREFIX1, PREFIX2, ... a pcap holds (each payload once per record;
# every byte that cannot be part of one becomes a line break, so binary neighbours cannot hide a payload)
records() { tr -c 'a-z0-9-' '\n' <"$1" 2>/dev/null | grep -c "$2[0-9]"; }
# waitrecords FILE PREFIX COUNT: up to 60 s for COUNT such records (then the caller goes on and the test says what is
# missing); a marker instead of a fixed pause before stopping a capture
waitrecords() {
  i=0
  while [ "$(records "$1" "$2")" -lt "$3" ]; do
    i=$((i + 1)); [ $i -gt 600 ] && { echo "waitrecords $1 $2 $3 timed out" >&2; return 1; }
    sleep 0.1
  done
}
# Debian's dwdump says nothing when it is ready: wait for its CONFIG (packet mode), then for START.
waitconfig() {
  i=0
  while ! dwdump -q 2>/dev/null | grep -q 'Alert mode: packet'; do
    i=$((i + 1)); [ $i -gt 300 ] && { echo "dwdump never configured packet mode" >&2; return 1; }
    sleep 0.2
  done
  sleep 1
}
# q NAME TOOL ARGS: stdout+stderr and exit status of a query, for comparison
q() { n=$1; shift; "$@" >/tmp/$n.txt 2>&1; echo "rc=$?" >>/tmp/$n.txt; sec $n /tmp/$n.txt; }

# 1. Fresh module: -q and -s, theirs and ours.
q query-fresh-theirs dwdump -q
q query-fresh-ours $OURS -q
q stats-fresh-theirs dwdump -s
q stats-fresh-ours $OURS -s

# 2. A reader that goes away: head takes the header and the family record, then exits. dwdump notices the reader
#    gone (its watch on stdout) or the next alert hits EPIPE, whichever comes first; either way it ends quietly.
( $OURS -o sw 2>/tmp/pipe.err; echo "rc=$?" >/tmp/pipe.rc ) | head -c 100 >/dev/null &
i=0
while ! grep -q 'capturing' /tmp/pipe.err 2>/dev/null && ! [ -s /tmp/pipe.rc ] && [ $i -lt 600 ]; do i=$((i + 1)); sleep 0.1; done
[ -s /tmp/pipe.rc ] || send 1 pipe-
waitfor /tmp/pipe.rc 'rc='
cat /tmp/pipe.rc >>/tmp/pipe.err; sec pipe /tmp/pipe.err

# 2b. A reader that goes away while no drops come: nothing is written, so only the watch on stdout can tell.
( $OURS -o sw 2>/tmp/idle.err; echo "rc=$?" >/tmp/idle.rc ) | (head -c 100 >/dev/null; cut -d' ' -f1 /proc/uptime >/tmp/idle.left) &
waitfor /tmp/idle.rc 'rc='
echo "ended=$(cut -d' ' -f1 /proc/uptime) left=$(cat /tmp/idle.left)" >>/tmp/idle.err
cat /tmp/idle.rc >>/tmp/idle.err; sec idle /tmp/idle.err

# 2c. SIGTERM the moment dwdump's code runs (its addon mapped), before it has opened its file or the kernel: a clean
#     exit 0, and the file it then makes is a valid pcap (header and family record, no alerts).
rm -f /tmp/early.pcap
$OURS -o sw -w /tmp/early.pcap 2>/tmp/early.err &
P=$!
i=0
while ! grep -q netlink_native /proc/$P/maps 2>/dev/null && [ $i -lt 100000 ]; do i=$((i + 1)); done
kill -TERM $P; wait $P; echo "rc=$?" >>/tmp/early.err
sec early /tmp/early.err

# 3. Ours: N datagrams, SIGINT. (It would fail to START if the EPIPE run had left the kernel monitoring.)
umask 022
$OURS -o sw -w /tmp/ours.pcap 2>/tmp/ours.err &
P=$!
waitfor /tmp/ours.err 'capturing' && send $N dw- && waitrecords /tmp/ours.pcap dw- $N
kill -INT $P; wait $P; echo "rc=$?" >>/tmp/ours.err
sec ours /tmp/ours.err
note ours-mode "$(stat -c '%a %s' /tmp/ours.pcap)"

# 3b. A burst from a SCHED_FIFO sender: drop_monitor's worker runs only once it is over, and then sends the queued
#     alerts back to back, as in a storm; each record must still carry its own drop time.
$OURS -o sw -w /tmp/burst.pcap 2>/tmp/burst.err &
P=$!
waitfor /tmp/burst.err 'capturing' && SHELL=/bin/sh chrt -f 10 /guest/send.sh $N burst- && waitrecords /tmp/burst.pcap burst- $N
kill -INT $P; wait $P; echo "rc=$?" >>/tmp/burst.err
sec burst /tmp/burst.err

# 4. Theirs: the same N datagrams; meanwhile ours passive (-p) listens, and is stopped with SIGTERM before two more
#    datagrams: passive must not stop the kernel, so theirs gets N + 2.
dwdump -o sw -w /tmp/theirs.pcap 2>/tmp/theirs.err &
T=$!
waitconfig
$OURS -p -w /tmp/passive.pcap 2>/tmp/passive.err &
P=$!
waitfor /tmp/passive.err 'listening' && send $N dw- && waitrecords /tmp/passive.pcap dw- $N
kill -TERM $P; wait $P; echo "rc=$?" >>/tmp/passive.err
send 2 late-
# Debian's dwdump writes its pcap through stdio: nothing to watch until it exits, so a pause stands in.
sleep 2
kill -INT $T; wait $T; echo "rc=$?" >>/tmp/theirs.err
sec theirs /tmp/theirs.err
sec passive /tmp/passive.err

# 5. -q and -s after the captures (packet mode, trunc 65535, tail drops so far), theirs and ours.
q query-theirs dwdump -q
q stats-theirs dwdump -s
q query-ours $OURS -q
q stats-ours $OURS -s

# 6. Exact accounting: queue length 1 (kernel tail drops), then a tiny receive buffer (losses on our socket). The burst
#    runs SCHED_FIFO, so drop_monitor's worker (SCHED_OTHER, bound to the sender's CPU) cannot drain the kernel queue
#    between two datagrams and the short queue overflows for sure. Then a pause before SIGINT: at STOP the kernel
#    cancels its worker and frees what is still queued without counting it (net_dm_trace_off_set), so the queue must
#    have been sent first; what dwdump has not read yet when it stops must be accounted (it drains its socket).
for run in tail:"-l 1":200 sock:"-b 1":500; do
  name=${run%%:*}; rest=${run#*:}; opts=${rest%:*}; count=${rest##*:}
  $OURS -o sw $opts -w /tmp/$name.pcap 2>/tmp/$name.err &
  P=$!
  waitfor /tmp/$name.err 'capturing' && SHELL=/bin/sh chrt -f 10 /guest/send.sh $count
  sleep 2
  kill -INT $P; wait $P; echo "rc=$?" >>/tmp/$name.err
  echo "sent=$count" >>/tmp/$name.err
  sec $name /tmp/$name.err
done

# 7. Refusals: a symlink (its target untouched), CONFIG while another dwdump monitors (EBUSY), -e.
echo keep >/tmp/victim; ln -s /tmp/victim /tmp/link.pcap
q symlink $OURS -o sw -w /tmp/link.pcap
note victim "$(cat /tmp/victim)"
dwdump -o sw -w /dev/null 2>/dev/null &
T=$!
waitconfig
q busy $OURS -o sw -w /tmp/busy.pcap
q exit-ours $OURS -e
# Debian's dwdump is stopped by our -e: a fresh start of ours must now succeed.
$OURS -o sw -w /tmp/after.pcap 2>/tmp/after.err &
P=$!
waitfor /tmp/after.err 'capturing' && send 3 after- && waitrecords /tmp/after.pcap after- 3
kill -INT $P; wait $P; echo "rc=$?" >>/tmp/after.err
sec after /tmp/after.err
kill -INT $T; wait $T

for f in ours theirs passive burst tail sock after early; do emit "$(echo $f | tr a-z A-Z)" /tmp/$f.pcap; done
