#!/bin/bash
# Runs in the test dom0: the checks named in $1 (separated by +), each reporting
#   REALXEN-RESULT <name> PASS|FAIL <seconds> <detail>
# on the console. Every wait is bounded. The guest's console is echoed (prefixed) on failure.
set -u
X=/opt/xenpv
BLKBACK_OPTS=$(sed -n 's/.*realxen.blkback=\([^ ]*\).*/\1/p' /proc/cmdline | tr ':' ' ')
NODE=$X/node
# realxen.nodeopts=a:b (diagnosis): extra node options for the dom0 backend, ':' for spaces.
NODE_OPTS=$(sed -n 's/.*realxen.nodeopts=\([^ ]*\).*/\1/p' /proc/cmdline | tr ':' ' ')
up() { cut -d' ' -f1 /proc/uptime; }
T0=$(up)
result() { # name PASS|FAIL start-uptime detail...
  local name=$1 verdict=$2 start=$3; shift 3
  echo "REALXEN-RESULT $name $verdict $(awk -v a="$start" -v b="$(up)" 'BEGIN{printf "%.1f", b-a}') $*"
}
prefixed() { sed "s/^/$1| /" "$2" 2>/dev/null | tr -d '\r' | tail -n "${3:-200}"; }
wait_for() { # seconds command...: poll every 0.5 s
  local limit=$1; shift
  local i=0
  until "$@"; do i=$((i+1)); [ $i -ge $((limit*2)) ] && return 1; sleep 0.5; done
}
domain_gone() { ! xl domid "$1" >/dev/null 2>&1; }
# Gone, or crashed (on_crash = "preserve" keeps it, so that its console is read to the end).
domain_ended() { domain_gone "$1" || xl list "$1" 2>/dev/null | awk 'NR==2 && $5 ~ /c/ {f=1} END {exit !f}'; }
ended_or_dead() { domain_ended "$1" || ! kill -0 "$2" 2>/dev/null; }
crashed_note() { # name log: if the domain crashed, say so, give xenconsoled a moment, destroy it
  if ! domain_gone "$1"; then
    echo "REALXEN-INFO domain $1 crashed: $(xl list "$1" | tail -1)"; sleep 2; xl destroy "$1"; return 0
  fi
  return 1
}
# Stream a log to the console while a check runs (prefixed; xen-trace lines only with TRACE_LIVE=1).
FOLLOWERS=
follow() { # prefix file
  touch "$2"
  if [ "${TRACE_LIVE:-0}" = 1 ]; then tail -n +1 -F "$2" 2>/dev/null | sed -u "s/^/$1| /" &
  else tail -n +1 -F "$2" 2>/dev/null | grep --line-buffered -v '^xen-trace' | sed -u "s/^/$1| /" &
  fi
  FOLLOWERS="$FOLLOWERS $!"
}
unfollow() { [ -n "$FOLLOWERS" ] && kill $FOLLOWERS 2>/dev/null; FOLLOWERS=; }

# ---- 1. xenpv's blkback (dom0, xen platform) serves Linux's xen-blkfront (domU) -----------
check_blkback() {
  local img=/var/lib/xen/images/xenpv-blk.img name=domu-blk s
  local log=/var/log/xen/console/guest-$name.log
  rm -f "$img" "$log"; truncate -s 256M "$img"
  s=$(up)
  if ! xl create -p /etc/xen/$name.cfg >/tmp/xl-create.log 2>&1; then
    result blkback-domain-created FAIL "$s" "$(tail -3 /tmp/xl-create.log | tr '\n' ' ')"; return
  fi
  local domid; domid=$(xl domid $name)
  result blkback-domain-created PASS "$s" "dom$domid created paused"
  s=$(up)
  XENPV_XEN_TRACE=${XENPV_XEN_TRACE:-0} $NODE $NODE_OPTS $X/realxen/xenpv-blkback.mjs --domid "$domid" \
    --disk "format=raw,vdev=xvda,access=rw,target=$img" $BLKBACK_OPTS >/tmp/blkback.log 2>&1 &
  local bpid=$!
  if ! wait_for 60 grep -q 'XENPV-BLKBACK READY' /tmp/blkback.log; then
    result blkback-started FAIL "$s" "xenpv blkback did not come up"; prefixed blkback /tmp/blkback.log
    kill -TERM $bpid 2>/dev/null; xl destroy $name; return
  fi
  result blkback-started PASS "$s" "$(grep -m1 'XENPV-BLKBACK READY' /tmp/blkback.log)"
  echo "REALXEN-INFO vbd trees written by xenpv's toolstack code:"
  xenstore-ls -fp /local/domain/0/backend/vbd/$domid | head -20
  xenstore-ls -fp /local/domain/$domid/device/vbd | head -12
  s=$(up)
  follow domU "$log"; follow blkback /tmp/blkback.log
  xl unpause $name
  if ! wait_for 300 ended_or_dead $name $bpid; then
    result blkback-linux-blkfront-ext4 FAIL "$s" "domU still running after 300 s"
    echo "REALXEN-INFO blkback threads (wchan): $(for t in /proc/$bpid/task/*; do echo -n "$(cat $t/comm):$(cat $t/wchan) "; done)"
    echo "REALXEN-INFO blkback main stack: $(cat /proc/$bpid/stack 2>/dev/null | head -12 | tr '\n' ' ')"
    echo "REALXEN-INFO blkback mappings: $(wc -l </proc/$bpid/maps) ($(grep -c gntdev /proc/$bpid/maps) gntdev)"
    dmesg | tail -25 | sed 's/^/dom0-dmesg| /'
    # A backend that gave up on its frontend says why in its error node (xenbus_dev_fatal's place).
    xenstore-ls -f /local/domain/0/error 2>/dev/null | head -5 | sed 's/^/xs-error| /'
    prefixed domU "$log" 30; prefixed blkback /tmp/blkback.log 60; xl destroy $name
  elif ! kill -0 $bpid 2>/dev/null; then
    wait $bpid; local rc=$?
    result blkback-linux-blkfront-ext4 FAIL "$s" "xenpv blkback died (exit $rc) while the domU ran"
    dmesg | grep -iE 'segfault|general protection|traps:|gntdev|xen' | tail -10 | sed 's/^/dom0-dmesg| /'
    prefixed blkback /tmp/blkback.log 40; prefixed domU "$log" 40; xl destroy $name
  elif ! grep -q 'DOMU-RESULT' "$log" && crashed_note $name "$log"; then
    result blkback-linux-blkfront-ext4 FAIL "$s" "the domU crashed"; prefixed domU "$log" 80
  elif grep -q 'DOMU-RESULT PASS' "$log"; then
    result blkback-linux-blkfront-ext4 PASS "$s" "$(grep -m1 'DOMU-RESULT PASS' "$log" | tr -d '\r')"
    grep -E 'DOMU-(STEP|SUM)' "$log" | tr -d '\r' | sed 's/^/domU| /'
  else
    result blkback-linux-blkfront-ext4 FAIL "$s" "no DOMU-RESULT PASS in the guest console"
    prefixed domU "$log"
  fi
  domain_gone $name || xl destroy $name
  kill -TERM $bpid 2>/dev/null
  wait_for 20 sh -c "! kill -0 $bpid 2>/dev/null" || kill -KILL $bpid
  unfollow
  grep -E 'XENPV-BLKBACK (STATS|STOPPED)' /tmp/blkback.log
  grep -q 'XENPV-BLKBACK FATAL' /tmp/blkback.log && prefixed blkback /tmp/blkback.log
  s=$(up)
  if e2fsck -n -f "$img" >/tmp/fsck.log 2>&1; then
    result blkback-e2fsck-clean PASS "$s" "$(tail -1 /tmp/fsck.log)"
  else
    result blkback-e2fsck-clean FAIL "$s" "e2fsck -n exit $?"; prefixed e2fsck /tmp/fsck.log
  fi
  # The domU wrote its checksums into the filesystem; dom0 reads them back independently.
  s=$(up)
  if debugfs -R 'cat /sums.txt' "$img" 2>/dev/null >/tmp/sums.txt && [ -s /tmp/sums.txt ] \
     && grep -q "$(head -1 /tmp/sums.txt | cut -d' ' -f1)" "$log"; then
    result blkback-dom0-reads-domu-files PASS "$s" "$(wc -l </tmp/sums.txt) checksums read back with debugfs"
  else
    result blkback-dom0-reads-domu-files FAIL "$s" "sums.txt missing or differs"
  fi
}

# Under xenpv's xenstored: what its log says of connections (internal errors, bad clients), for a FAIL line.
xenstored_says() { # domid
  local f=/var/log/xenpv-xenstored.log
  grep -q 'realxen.xenstored=xenpv' /proc/cmdline && [ -f $f ] || return 0
  echo "; xenpv xenstored logged: $(grep -v 'listening on\|^xenstored: domains:' $f | tail -3 | cut -c1-200 | tr '\n' ' ')"
  echo "; its last view of d$1 while it ran: $(grep " d$1 " /tmp/xs-conns.txt 2>/dev/null | cut -c1-400 | tr '\n' ' ')"
}

# ---- 2. xenpv's blkfront (domU userspace, xen platform) against Linux's kernel blkback ----
check_blkfront() {
  local img=/var/lib/xen/images/kernel-blk.img name=domu-front s
  local log=/var/log/xen/console/guest-$name.log
  rm -f "$img" "$log"; truncate -s 64M "$img"
  $NODE $X/realxen/xenpv-blkfront.mjs prepare "$img" || { result blkfront-prepare FAIL 0 "could not write pattern A"; return; }
  modprobe xen-blkback
  s=$(up)
  if ! xl create /etc/xen/$name.cfg >/tmp/xl-create.log 2>&1; then
    result blkfront-domain-created FAIL "$s" "$(tail -3 /tmp/xl-create.log | tr '\n' ' ')"; return
  fi
  result blkfront-domain-created PASS "$s" "dom$(xl domid $name) with a vbd served by $(xenstore-read /local/domain/0/backend/vbd/$(xl domid $name)/51712/physical-device-path 2>/dev/null || echo '?') (Linux blkback)"
  s=$(up)
  local domid poller=
  domid=$(xl domid $name)
  # Under xenpv's xenstored: its view of every connection every 5 s while the domU runs (the
  # domU's is gone once it powers off), so a domU stuck on a store reply says what it waits on.
  if grep -q 'realxen.xenstored=xenpv' /proc/cmdline; then
    rm -f /tmp/xs-conns.txt /tmp/xs-stuck
    ( while sleep 5; do
        prev=$(grep " d$domid " /tmp/xs-conns.txt 2>/dev/null)
        timeout 5 xenstore-control connections >/tmp/xs-conns.new 2>&1 && mv /tmp/xs-conns.new /tmp/xs-conns.txt
        now=$(grep " d$domid " /tmp/xs-conns.txt 2>/dev/null)
        # Replies unread by the guest for 5 s with nothing moving: Xen's own view of the event
        # channels (pending and mask bits of both ends), printed by Xen on the serial console.
        if [ -n "$now" ] && [ "$now" = "$prev" ] && ! echo "$now" | grep -q 'rsp cons \([0-9]*\) prod \1[,;]' && [ ! -e /tmp/xs-stuck ]; then
          touch /tmp/xs-stuck
          echo "REALXEN-INFO d$domid has not read its store replies for 5 s: $now" >/dev/hvc0
          xl debug-keys e
        fi
      done ) &
    poller=$!
  fi
  if ! wait_for 420 domain_ended $name; then
    [ -n "$poller" ] && kill $poller
    result blkfront-kernel-blkback-io FAIL "$s" "domU still running after 420 s"; prefixed domU "$log"; xl destroy $name; return
  fi
  [ -n "$poller" ] && kill $poller
  if ! grep -q 'XENPV-BLKFRONT PASS\|XENPV-BLKFRONT FAIL' "$log" && crashed_note $name "$log"; then
    result blkfront-kernel-blkback-io FAIL "$s" "the domU crashed"; prefixed domU "$log" 80
  elif grep -q 'XENPV-BLKFRONT PASS' "$log"; then
    result blkfront-kernel-blkback-io PASS "$s" "$(grep -m1 'XENPV-BLKFRONT PASS' "$log" | tr -d '\r')"
    grep -E 'XENPV-BLKFRONT (xenbus|connected|read|wrote)' "$log" | tr -d '\r' | cut -c1-400 | sed 's/^/domU| /'
  else
    # The result line carries the guest's own last words: CI may show only the summary.
    result blkfront-kernel-blkback-io FAIL "$s" "no XENPV-BLKFRONT PASS in the guest console; it said: $(grep 'XENPV-BLKFRONT' "$log" | grep -v 'still running' | tail -8 | tr -d '\r' | cut -c1-600 | tr '\n' ' ')$(xenstored_says $domid | tr '\n' ' ')"; prefixed domU "$log"
  fi
  s=$(up)
  if $NODE $X/realxen/xenpv-blkfront.mjs verify "$img" >/tmp/verify.log 2>&1; then
    result blkfront-dom0-sees-writes PASS "$s" "$(tail -1 /tmp/verify.log)"
  else
    result blkfront-dom0-sees-writes FAIL "$s" "$(tail -3 /tmp/verify.log | tr '\n' ' ')"
  fi
}

# Check 4 (xenpv's xenstored in place of Xen's) lives in its own file.
. "$(dirname "$0")/checks-xenstored.sh"
# Check 3 (xenpv's console daemon and `xenpv console`) lives in its own file.
. "$(dirname "$0")/checks-console.sh"

echo "REALXEN-CHECKS-START $1 uptime=$T0"
IFS=+ read -ra names <<<"$1"
for c in "${names[@]}"; do
  case "$c" in
    blkback) check_blkback ;;
    blkfront) check_blkfront ;;
    console) check_console ;;
    xenstored-dom0) check_xenstored_dom0 ;;
    xenstored-lifecycle) check_xenstored_lifecycle ;;
    *) echo "REALXEN-RESULT $c FAIL 0 unknown check" ;;
  esac
done
echo "REALXEN-CHECKS-DONE uptime=$(up)"
