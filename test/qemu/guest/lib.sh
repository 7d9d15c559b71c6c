# Shell helpers every guest script sources (`. /guest/lib.sh`; the harness ships this file with each run).
# Output protocol: a section is printed between "@@S name@@" and "@@E@@", then "@@T name seconds@@" (guest uptime),
# which the test prints to show where the time goes; binary files go as base64 between @@NAME-BEGIN@@ and @@NAME-END@@.
sec() { echo "@@S $1@@"; cat "$2"; echo "@@E@@"; echo "@@T $1 $(cut -d' ' -f1 /proc/uptime)@@"; }
note() { echo "@@S $1@@"; echo "$2"; echo "@@E@@"; echo "@@T $1 $(cut -d' ' -f1 /proc/uptime)@@"; }
emit() { echo "@@$1-BEGIN@@"; base64 "$2"; echo "@@$1-END@@"; }
# waitfor FILE TEXT: up to 60 s for TEXT to appear in FILE (a first node start in a boot can take half that on a
# loaded host)
waitfor() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 600 ] && { echo "waitfor $1 '$2' timed out" >&2; return 1; }
    sleep 0.1
  done
}
# send COUNT [PAYLOAD [HOST [PORT]]]: a burst of datagrams from bash (send.sh, shipped by the test), no node start
send() { SHELL=/bin/sh /guest/send.sh "$@"; }
# run TOOL NAME COMMANDS: commands from a file (EOF after them, as with a pipe), output to /tmp/NAME.txt, as a section
run() { printf "$3" >/tmp/$2.in; $1 </tmp/$2.in >/tmp/$2.txt 2>&1; echo "rc=$?" >>/tmp/$2.txt; sec "$2" /tmp/$2.txt; }
# bg TOOL NAME COMMANDS: the same in the background, its pid in BG; finish PID NAME waits and prints the section
bg() { printf "$3" >/tmp/$2.in; $1 </tmp/$2.in >/tmp/$2.txt 2>&1 & BG=$!; }
finish() { wait $1; echo "rc=$?" >>/tmp/$2.txt; sec "$2" /tmp/$2.txt; }
