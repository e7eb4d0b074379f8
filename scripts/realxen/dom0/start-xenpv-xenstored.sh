#!/bin/sh
# realxen.xenstored=xenpv: xenpv's xenstored replaces Xen's in this dom0 (check 4 of issue 7).
# It serves dom0's own ring (/dev/xen/xenbus_backend), guests' rings on INTRODUCE, and the
# socket libxenstore's clients use (xl, xenconsoled, xen-init-dom0, xenstore-*), and follows
# domain deaths through VIRQ_DOM_EXC. Its log: /var/log/xenpv-xenstored.log (on the console
# when it does not come up). Returns once the socket answers, or after 90 s.
X=/opt/xenpv
LOG=/var/log/xenpv-xenstored.log
mkdir -p /run/xenstored
grep -q 'realxen.trace=1' /proc/cmdline && export XENPV_XEN_TRACE=1
t0=$(cut -d' ' -f1 /proc/uptime)
: >"$LOG"
# Its log on the console while it starts (a daemon that hangs says where).
tail -n +1 -F "$LOG" 2>/dev/null | sed -u 's/^/xenstored| /' >/dev/hvc0 &
follower=$!
$X/node $X/bin/xenpv.js xenstored --xen -F --socket /run/xenstored/socket >>"$LOG" 2>&1 &
echo $! >/run/xenstore.pid
i=0
# Bounded: a socket that accepts but never answers must not hang dom0's init.
until timeout 5 xenstore-read -s / >/dev/null 2>&1; do
  i=$((i+1))
  if [ $i -gt 120 ] || ! kill -0 "$(cat /run/xenstore.pid)" 2>/dev/null; then
    echo "REALXEN-INFO xenpv xenstored did not come up (pid alive: $(kill -0 "$(cat /run/xenstore.pid)" 2>/dev/null && echo yes || echo no))" >/dev/hvc0
    kill $follower 2>/dev/null
    exit 1
  fi
  sleep 0.5
done
kill $follower 2>/dev/null
echo "REALXEN-INFO xenpv xenstored up in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.1f", b-a}') s: $(grep -m1 "listening on" "$LOG")" >/dev/hvc0
