# Guest session for test/netdm/qemu.test.ts (busybox sh): the same steps through Debian's dropwatch and our CLI,
# then backend-level checks. Each output is printed between "@@S name@@" and "@@E@@".
set -u
# busybox timeout execs the tool in its own pid, so $! and kill reach the tool itself.
OURS="timeout 60 node /project/bin/dropwatch -l kas"
THEIRS="timeout 60 dropwatch -l kas"
sec() { echo "@@S $1@@"; cat "$2"; echo "@@E@@"; }
note() { echo "@@S $1@@"; echo "$2"; echo "@@E@@"; }
# waitfor FILE TEXT: up to 30 s for TEXT to appear in FILE (ours only: Debian dropwatch's stdout to a file is
# block-buffered, so for it a fixed pause stands in)
ready() { if [ "$1" = theirs ]; then sleep 4; else waitfor "$2" 'Kernel monitoring activated'; fi; }
waitfor() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 300 ] && { echo "waitfor $1 '$2' timed out" >&2; return 1; }
    sleep 0.1
  done
}
send() { node /guest/send.mjs "$@"; }
# run TOOL NAME COMMANDS: commands from a file (EOF after them, as with a pipe), output to /tmp/NAME.txt
run() { printf "$3" >/tmp/$2.in; $1 </tmp/$2.in >/tmp/$2.txt 2>&1; echo "rc=$?" >>/tmp/$2.txt; sec "$2" /tmp/$2.txt; }
bg() { printf "$3" >/tmp/$2.in; $1 </tmp/$2.in >/tmp/$2.txt 2>&1 & BG=$!; }
finish() { wait $1; echo "rc=$?" >>/tmp/$2.txt; sec "$2" /tmp/$2.txt; }

note kallsyms "$(grep -E ' (__udp4_lib_rcv)$' /proc/kallsyms)"

# 1. Summary, alert limit 1, 100 datagrams: theirs then ours.
for who in theirs ours; do
  tool=$THEIRS; [ $who = ours ] && tool=$OURS
  bg "$tool" summary-$who 'set alertlimit 1\nstart\n'
  ready $who /tmp/summary-$who.txt && send 100
  finish $BG summary-$who
done

# 2. Exact counts over several kernel intervals: 1000 datagrams, then SIGINT.
bg "$OURS" count-ours 'start\n'
waitfor /tmp/count-ours.txt 'Kernel monitoring activated' && send 1000
sleep 3
kill -INT $BG
finish $BG count-ours

# 3. show / stats / set alertmode, theirs then ours on the same kernel state.
for who in theirs ours; do
  tool=$THEIRS; [ $who = ours ] && tool=$OURS
  run "$tool" config-$who 'show\nstats\nset alertmode packet\nshow\nset alertmode summary\nshow\n'
done

# 4. Packet mode, alert limit 3, three datagrams.
for who in theirs ours; do
  tool=$THEIRS; [ $who = ours ] && tool=$OURS
  bg "$tool" packet-$who 'set alertmode packet\nset alertlimit 3\nstart\n'
  ready $who /tmp/packet-$who.txt && { send 1 dropwatch-1; send 1 dropwatch-22; send 1 dropwatch-333; }
  finish $BG packet-$who
  run "$tool" reset-$who 'set alertmode summary\n'
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
node /guest/checks.mjs stop >/tmp/recover.txt 2>&1; sec recover /tmp/recover.txt
bg "$OURS" after-recover 'set alertlimit 1\nstart\n'
waitfor /tmp/after-recover.txt 'Kernel monitoring activated' && send 7
finish $BG after-recover

# 8. process.exit without close: the exit hook's synchronous STOP.
node /guest/checks.mjs start-exit >/tmp/exit.txt 2>&1
node /guest/checks.mjs startstop after-exit >>/tmp/exit.txt 2>&1
sec exit-hook /tmp/exit.txt

# 9. Backend API: flags, refusals, close STOP, config round trip.
node /guest/checks.mjs api >/tmp/api.txt 2>&1; sec api /tmp/api.txt

# 10. Overflow: packet mode into a small receive buffer while our loop stalls.
node /guest/checks.mjs overflow 5000 32768 >/tmp/overflow.txt 2>&1; sec overflow /tmp/overflow.txt
