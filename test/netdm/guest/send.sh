#!/bin/bash
# Guest drop maker: COUNT UDP datagrams (payload default "x") to 127.0.0.1:9 (or HOST:PORT), where nothing listens:
# one NO_SOCKET drop at __udp4_lib_rcv (__udp6_lib_rcv) each, in one burst. bash's /dev/udp redirection opens a fresh
# socket per datagram and its printf builtin writes the payload in one write(), so every iteration is exactly one
# datagram (a connected socket reused would lose every other one to the ECONNREFUSED of the previous ICMP). No node
# start: ~3 s under TCG saved per burst. Needs SHELL in the environment (init.sh exports it): without it bash looks
# the user up at start, and glibc's failed nscd connect is a drop of its own at unix_stream_connect.
count=${1:-1}
payload=${2:-x}
# Another address or port (e.g. ::1, or 10) for the flow filter checks; nothing listens on those either.
host=${3:-127.0.0.1}
port=${4:-9}
for ((i = 0; i < count; i++)); do printf '%s' "$payload" >/dev/udp/$host/$port; done
