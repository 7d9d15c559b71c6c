# Guest-side fixture session (busybox sh inside the qemu guest; run by capture-netdm.ts).
# One boot, so every address in the .bin files, the pcaps, kallsyms-excerpt.txt and Debian
# dropwatch's text output belongs to the same kernel image (the harness boots with nokaslr).
#
# Every output file is printed base64-encoded between "@@FILE <name>@@" and "@@ENDFILE@@" so the
# serial console cannot alter a byte. Drops: UDP datagrams to 127.0.0.1:9 (nothing listens there),
# sent by /guest/send.mjs in one burst so that they fall into one 1 s summary interval.

emit() { # emit NAME FILE
  echo "@@FILE $1@@"
  base64 "$2"
  echo "@@ENDFILE@@"
}
send() { # send COUNT [PAYLOAD]
  node /guest/send.mjs "$@"
}
# Runs dropwatch with commands on stdin; with an alert limit it stops by itself after the alerts,
# reads EOF at its prompt and exits.
dw() { # dw OUTFILE COMMANDS
  printf "$2" | timeout 60 dropwatch -l kas >"$1" 2>&1
  echo "@@INFO exit $(basename "$1")=$?@@"
}

echo "@@INFO kernel=$(uname -r) cmdline=$(cat /proc/cmdline)@@"

# 1. Raw NET_DM messages from our own requests (python3, stdlib sockets only).
python3 /guest/nlcapture.py || echo "@@ERROR nlcapture.py exit $?@@"

# 2. nlmon records every netlink message in the system while Debian's tools run, so the requests
#    dropwatch itself sends are kept too (link type NETLINK, no cooked header: tcpdump's own).
insmod /lib/modules/nlmon.ko
ip link add nlmon0 type nlmon
ip link set nlmon0 up
tcpdump -i nlmon0 -U -Z root -w /tmp/nlmon-dropwatch.pcap 2>/tmp/tcpdump.err &
TCPDUMP=$!
sleep 2

# 3. Summary mode: 100 drops, one alert.
dw /tmp/dropwatch-summary.txt 'set alertlimit 1\nstart\n' &
DW=$!
sleep 2
send 100
wait $DW

dw /tmp/dropwatch-show-summary.txt 'show\n'
dw /tmp/dropwatch-stats.txt 'stats\n'

# 4. Packet mode: three drops with distinct payloads, one block each.
dw /tmp/dropwatch-packet.txt 'set alertmode packet\nset alertlimit 3\nstart\n' &
DW=$!
sleep 2
send 1 dropwatch-1
send 1 dropwatch-22
send 1 dropwatch-333
wait $DW
dw /tmp/dropwatch-show-packet.txt 'show\n'

# 5. The kernel's refusals as dropwatch prints them: a second dropwatch while one monitors.
printf 'start\n' | timeout 20 dropwatch -l kas >/tmp/dropwatch-holder-sigint.txt 2>&1 &
HOLDER=$!
sleep 3
dw /tmp/dropwatch-err-start-eagain.txt 'start\n'
dw /tmp/dropwatch-err-config-ebusy.txt 'set alertmode summary\n'
kill -INT $HOLDER
wait $HOLDER
dw /tmp/dropwatch-set-summary.txt 'set alertmode summary\n'

kill -INT $TCPDUMP
wait $TCPDUMP

# 6. dwdump: GETFAMILY dump reply + packet alerts in its pcap (software drops only: the guest has
#    no devlink device). It configures packet mode itself and stops monitoring when interrupted.
dwdump -o sw -w /tmp/dwdump-packet.pcap 2>/tmp/dwdump.err &
DWD=$!
sleep 3
send 1 dwdump-1
send 1 dwdump-22
send 1 dwdump-333
sleep 2
kill -INT $DWD
wait $DWD
dwdump -q >/tmp/dwdump-query.txt 2>&1
dwdump -s >/tmp/dwdump-stats.txt 2>&1
dw /tmp/dropwatch-set-summary-after-dwdump.txt 'set alertmode summary\n'

for f in /tmp/dropwatch-*.txt /tmp/dwdump-*.txt /tmp/dwdump-packet.pcap /tmp/nlmon-dropwatch.pcap; do
  emit "$(basename "$f")" "$f"
done

# 7. The symbols around every PC the fixtures contain: the line for the symbol and the next one,
#    enough to check symbol+offset without shipping all of /proc/kallsyms.
grep -E ' (__udp4_lib_rcv|udp_v4_early_demux|kfree_skb_reason|kfree_skb|skb_release_data|__kfree_skb|consume_skb|_stext|_text|_etext)$' /proc/kallsyms >/tmp/kallsyms-excerpt.txt
emit kallsyms-excerpt.txt /tmp/kallsyms-excerpt.txt
cat /tmp/tcpdump.err /tmp/dwdump.err >&2
