# Runs several sessions in one boot (test/qemu/harness.ts, runSessionsInGuest): /init runs this as its one script, and
# it runs /guest/sessions/1, 2, ... in turn, each as if the boot were its own. A session directory holds script.{sh,mjs,py},
# optional env (sourced), files/ (copied to / for the session, removed after it) and timeout (seconds).
# Between two sessions every process the last one left is killed, the modules it loaded are unloaded, drop_monitor is
# reloaded (alert mode, lengths, counters and monitoring state are the module's globals) and /tmp is emptied.
# Frames, each on its own line: "@@DWQ-SESSION N@@" before session N on stdout and stderr; after it on stdout
# "@@DWQ-SESSION-END N rc=R timeout=T up=START END@@" (T=1: killed at its timeout; guest uptimes in seconds).
up() { cut -d' ' -f1 /proc/uptime; }
modules() { cut -d' ' -f1 /proc/modules; }
mkdir -p /run/dwq

# Kills every process but /init and this shell, and waits (up to 5 s) until none is left.
kill_leftovers() {
  kill -KILL -1 2>/dev/null
  i=0
  while [ $i -lt 50 ]; do
    left=
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      # Kernel threads and zombies have an empty command line (and /proc sizes are 0, so read it).
      cmd=
      read -r cmd 2>/dev/null <"/proc/$p/cmdline"
      [ "$p" = 1 ] || [ "$p" = $$ ] || [ -z "$cmd" ] || left="$left $p"
    done
    [ -z "$left" ] && return
    kill -KILL $left 2>/dev/null
    i=$((i + 1)); sleep 0.1
  done
}

# files DIR: the paths under DIR/files, from DIR/files
files() { [ -d "$1/files" ] && (cd "$1/files" && find . ! -type d); }

# cleanup DIR BEFORE: after the session in DIR, with BEFORE the modules loaded when it started.
cleanup() {
  kill_leftovers
  # /proc/modules lists the newest first, so a module goes before those it depends on.
  for m in $(modules); do
    case " $2 " in *" $m "*) ;; *) rmmod "$m" 2>/dev/null ;; esac
  done
  files "$1" | while read -r f; do rm -f "/${f#./}"; done
  rm -rf /tmp/* /tmp/.[!.]* 2>/dev/null
}

# A fresh drop_monitor, reported as /init reports its first load. A session that left the kernel monitoring holds
# the module: Debian's dwdump -e stops it first.
reload_drop_monitor() {
  if ! rmmod drop_monitor 2>/run/dwq/rmmod.err; then
    dwdump -e >/dev/null 2>&1
    rmmod drop_monitor 2>/run/dwq/rmmod.err
  fi
  if insmod /lib/modules/drop_monitor.ko 2>/run/dwq/insmod.err; then
    echo "@@DWQ-MODULE drop_monitor ok@@" >&2
  else
    echo "@@DWQ-MODULE drop_monitor failed: $(cat /run/dwq/rmmod.err /run/dwq/insmod.err | tr '\n' ' ')@@" >&2
  fi
}

# run_session DIR: the script with its env from /project, stdin /dev/null; a watchdog kills it at its timeout.
run_session() {
  script=$(ls "$1"/script.* 2>/dev/null | head -n 1)
  case "$script" in
    *.mjs | *.js) runner="node" ;;
    *.py) runner="python3" ;;
    *) runner="sh" ;;
  esac
  rm -f /run/dwq/pid /run/dwq/timedout
  (sleep "$(cat "$1/timeout")"; echo 1 >/run/dwq/timedout; kill -KILL "$(cat /run/dwq/pid)") >/dev/null 2>&1 &
  watchdog=$!
  sh -c 'echo $$ >/run/dwq/pid; [ -f "$1/env" ] && . "$1/env"; cd /project 2>/dev/null || cd /; exec "$2" "$3"' \
    session "$1" "$runner" "$script" </dev/null
  rc=$?
  kill -KILL $watchdog 2>/dev/null
  timedout=0
  [ $rc = 137 ] && [ -f /run/dwq/timedout ] && timedout=1
}

n=1
while [ -d /guest/sessions/$n ]; do
  d=/guest/sessions/$n
  echo "@@DWQ-SESSION $n@@"
  echo "@@DWQ-SESSION $n@@" >&2
  [ $n -gt 1 ] && reload_drop_monitor
  before=$(modules | tr '\n' ' ')
  files $d | while read -r f; do f=${f#./}; mkdir -p "$(dirname "/$f")"; cp -p "$d/files/$f" "/$f"; done
  start=$(up)
  run_session $d
  echo "@@DWQ-SESSION-END $n rc=$rc timeout=$timedout up=$start $(up)@@"
  n=$((n + 1))
  # After the last one the guest powers off, as after a boot's one script.
  [ -d /guest/sessions/$n ] && cleanup $d "$before"
done
