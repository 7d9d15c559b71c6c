# Guest session for test/bpf/qemu.int.test.ts (busybox sh): the bpf source on Debian's 6.1 kernel, which has BTF and
# drop_monitor both. Each output is printed between "@@S name@@" and "@@E@@".
. /guest/lib.sh
set -u
OURS="timeout 120 node /project/bin/dropwatch -l kas"
# drops FILE SYMBOL: the sum of the "N drops at SYMBOL+" lines so far
drops() { awk -v s=" drops at $2+" 'index($0, s) { n += $1 } END { print n + 0 }' "$1" 2>/dev/null; }
# waitdrops FILE SYMBOL N: up to 30 s for FILE to report N drops at SYMBOL
waitdrops() {
  i=0
  while [ "$(drops "$1" "$2")" -lt "$3" ]; do
    i=$((i + 1)); [ $i -gt 300 ] && { echo "waitdrops $1 $2 $3 timed out" >&2; return 1; }
    sleep 0.1
  done
}
# started FILE PID: until the tool in FILE says monitoring is on; at once when it has ended instead
started() {
  i=0
  while ! grep -q 'Kernel monitoring activated' "$1" 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || return 1
    i=$((i + 1)); [ $i -gt 600 ] && { echo "started $1 timed out" >&2; return 1; }
    sleep 0.1
  done
}

note kernel "$(uname -r) $(wc -c </sys/kernel/btf/vmlinux)"

# 1. -b bpf loads (its addon's libbpf, libelf and libz are in the image) and counts 1000 datagrams exactly, sent in four
#    bursts a little over a second apart so the count spans several intervals; SIGINT once all are counted.
$OURS -b bpf -s >/tmp/count-bpf.txt 2>&1 &
P=$!
started /tmp/count-bpf.txt $P && { send 250; for k in 2 3 4; do sleep 1.1; send 250; done; } &&
  waitdrops /tmp/count-bpf.txt __udp4_lib_rcv 1000
kill -INT $P; wait $P; echo "rc=$?" >>/tmp/count-bpf.txt
sec count-bpf /tmp/count-bpf.txt

# 2. bpf and NET_DM on the same drops at once: both CLIs in summary mode, started before and stopped after the same
#    drops (UDP and TCP over IPv4 and IPv6, 50 of each, and 200 more UDP datagrams), stopped once both have counted
#    every UDP datagram and a second more has passed (NET_DM frees what it has not sent when it is stopped).
$OURS -b netdm -s >/tmp/both-netdm.txt 2>&1 &
N=$!
$OURS -b bpf -s >/tmp/both-bpf.txt 2>&1 &
B=$!
if started /tmp/both-netdm.txt $N && started /tmp/both-bpf.txt $B; then
  sleep 1
  SHELL=/bin/sh /guest/flows.sh 50
  send 200
  waitdrops /tmp/both-netdm.txt __udp4_lib_rcv 250 && waitdrops /tmp/both-bpf.txt __udp4_lib_rcv 250
  sleep 2
fi
kill -INT $B $N; wait $B; echo "rc=$?" >>/tmp/both-bpf.txt; wait $N; echo "rc=$?" >>/tmp/both-netdm.txt
sec both-netdm /tmp/both-netdm.txt
sec both-bpf /tmp/both-bpf.txt

# 3. dwdump on bpf and on NET_DM at once, capturing the same drops: 20 tokened UDP datagrams and 5 of each of flows.sh's
#    four flows; stopped once both files hold every tokened datagram and a second more has passed.
# records FILE PREFIX: how many of the datagrams PREFIX1, PREFIX2, ... a pcap holds
records() { tr -c 'a-z0-9-' '\n' <"$1" 2>/dev/null | grep -c "$2[0-9]"; }
waitrecords() {
  i=0
  while [ "$(records "$1" "$2")" -lt "$3" ]; do
    i=$((i + 1)); [ $i -gt 600 ] && { echo "waitrecords $1 $2 $3 timed out" >&2; return 1; }
    sleep 0.1
  done
}
node /project/bin/dwdump -B netdm -o sw -w /tmp/dw-netdm.pcap 2>/tmp/dw-netdm.txt &
N=$!
node /project/bin/dwdump -B bpf -o sw -w /tmp/dw-bpf.pcap 2>/tmp/dw-bpf.txt &
B=$!
if waitfor /tmp/dw-netdm.txt 'capturing' && waitfor /tmp/dw-bpf.txt 'capturing'; then
  SHELL=/bin/sh /guest/send-indexed.sh 20 dwb-
  SHELL=/bin/sh /guest/flows.sh 5
  waitrecords /tmp/dw-netdm.pcap dwb- 20 && waitrecords /tmp/dw-bpf.pcap dwb- 20
  sleep 1
fi
kill -INT $B $N; wait $B; echo "rc=$?" >>/tmp/dw-bpf.txt; wait $N; echo "rc=$?" >>/tmp/dw-netdm.txt
sec dw-netdm /tmp/dw-netdm.txt
sec dw-bpf /tmp/dw-bpf.txt
emit DW-NETDM /tmp/dw-netdm.pcap
emit DW-BPF /tmp/dw-bpf.pcap
