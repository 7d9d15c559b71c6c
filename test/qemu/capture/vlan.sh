# Guest session for capture-vlan.ts (busybox sh): frames with 802.1Q and 802.1ad tags as the Debian kernel sends them,
# and NET_DM packet alerts for IPv4 and IPv6 UDP and TCP drops as our dwdump captures them. Files come back as base64
# between "@@NAME-BEGIN@@" and "@@NAME-END@@".
set -u
emit() { echo "@@$1-BEGIN@@"; base64 "$2"; echo "@@$1-END@@"; }
for m in llc stp garp mrp 8021q dummy; do insmod /guest/mod/$m.ko; done
# dummy0 has no VLAN offload, so the kernel writes each tag into the frame; its NOARP flag (inherited by the VLAN
# devices) sends IP without ARP, and d100 turns ARP back on to send a tagged ARP request.
# dummy.ko makes dummy0 itself (numdummies=1). No duplicate address detection: busybox ip has no.
echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad
ip link set dummy0 up
ip link add link dummy0 name d100 type vlan id 100
ip link add link dummy0 name d300 type vlan protocol 802.1ad id 300
ip link add link d300 name d300.400 type vlan id 400
for d in d100 d300 d300.400; do ip link set $d up; done
ip link set d100 arp on
ip addr add 10.1.0.1/24 dev d100
ip addr add fd01::1/64 dev d100
ip addr add 10.3.0.1/24 dev d300.400
ip addr add fd03::1/64 dev d300.400
sleep 1
tcpdump -Z root -i dummy0 -U -w /tmp/vlan.pcap 2>/tmp/tcpdump.err &
T=$!
i=0; while ! grep -q listening /tmp/tcpdump.err && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
bash -c '
printf q >/dev/udp/10.3.0.2/9
printf q6 >/dev/udp/fd03::2/9
printf v6 >/dev/udp/fd01::2/9
(exec 3<>/dev/tcp/10.3.0.2/10) 2>/dev/null &
sleep 1; kill $! 2>/dev/null
printf arp >/dev/udp/10.1.0.2/9
' || true
sleep 1
kill -INT $T; wait $T
cat /tmp/tcpdump.err >&2
emit VLAN /tmp/vlan.pcap
# NET_DM: our dwdump while loopback UDP and TCP, IPv4 and IPv6, are dropped (nothing listens on ports 9 and 10).
node /project/bin/dwdump -o sw -w /tmp/netdm.pcap 2>/tmp/dwdump.err &
D=$!
i=0; while ! grep -q capturing /tmp/dwdump.err && [ $i -lt 600 ]; do i=$((i + 1)); sleep 0.1; done
bash -c '
printf flow-4 >/dev/udp/127.0.0.1/9
printf flow-6 >/dev/udp/::1/9
(exec 3<>/dev/tcp/127.0.0.1/10) 2>/dev/null
(exec 3<>/dev/tcp/::1/10) 2>/dev/null
' || true
sleep 2
kill -INT $D; wait $D || true
emit NETDM /tmp/netdm.pcap
