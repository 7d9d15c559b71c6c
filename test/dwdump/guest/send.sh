#!/bin/bash
# Guest drop maker: COUNT UDP datagrams to 127.0.0.1:9, where nothing listens (one NO_SOCKET drop each), in one burst
# from one process, so the kernel sees them in order. Payload PREFIX + index (1-based), or "x". bash's /dev/udp
# redirection opens a fresh socket per datagram and printf writes the payload in one write(): exactly one datagram per
# iteration, without a node start (~3 s under TCG). Needs SHELL in the environment (init.sh exports it): without it
# bash looks the user up at start, and glibc's failed nscd connect is a drop of its own at unix_stream_connect.
count=${1:-1}
prefix=${2-}
for ((i = 1; i <= count; i++)); do
  if [ $# -ge 2 ]; then printf '%s' "$prefix$i"; else printf x; fi >/dev/udp/127.0.0.1/9
done
