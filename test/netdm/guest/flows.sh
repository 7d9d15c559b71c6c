#!/bin/bash
# Guest drop maker for the flow checks: COUNT of each of four flows, every one a NO_SOCKET drop on loopback, from
# bash's /dev/udp and /dev/tcp (a fresh socket each, no node start): UDP to 127.0.0.1:9 and [::1]:9, and a TCP SYN
# to 127.0.0.1:10 and [::1]:10, where nothing listens (the kernel answers the SYN with a RST, then drops it).
# Needs SHELL in the environment (init.sh exports it), as send.sh does.
count=${1:-1}
for ((i = 1; i <= count; i++)); do
  printf 'flow-%s' "$i" >/dev/udp/127.0.0.1/9
  printf 'flow6-%s' "$i" >/dev/udp/::1/9
  (exec 3<>/dev/tcp/127.0.0.1/10) 2>/dev/null
  (exec 3<>/dev/tcp/::1/10) 2>/dev/null
done
exit 0
