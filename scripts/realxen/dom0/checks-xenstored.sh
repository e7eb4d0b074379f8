# Sourced by checks.sh: check 4 of issue 7, xenpv's xenstored in place of Xen's (boot with
# realxen.xenstored=xenpv). Seen from dom0 with Debian's xenstore-* tools and xl:
#   xenstored-dom0       the daemon is xenpv's; dom0's kernel reaches it through its own ring
#                        (/dev/xen/xenbus), libxenstore through the socket; xen-init-dom0's nodes
#   (then blkback / blkfront: domUs boot, their xenbus runs on rings the daemon maps, dom0's
#    kernel blkback works through dom0's ring, xl's monitor destroys a powered-off domU on
#    @releaseDomain)
#   xenstored-lifecycle  xl create -p / xl destroy: INTRODUCE, @introduceDomain, the guest's
#                        ring, VIRQ_DOM_EXC, release and @releaseDomain, as the daemon logs them
XS_LOG=/var/log/xenpv-xenstored.log
XS_WATCHERS=

lines() { wc -l <"$1" 2>/dev/null || echo 0; }

check_xenstored_dom0() {
  local s pid cmd name via
  s=$(up)
  pid=$(cat /run/xenstore.pid 2>/dev/null)
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
  # Watchers for the whole boot: the lifecycle check counts what they saw.
  xenstore-watch @introduceDomain >/tmp/watch-intro.log 2>&1 &
  XS_WATCHERS="$!"
  xenstore-watch @releaseDomain >/tmp/watch-release.log 2>&1 &
  XS_WATCHERS="$XS_WATCHERS $!"
  case "$cmd" in
    *xenpv.js\ xenstored\ --xen*) ;;
    *) result xenstored-dom0 FAIL "$s" "the running xenstored (pid $pid) is not xenpv's: '$cmd'"; return ;;
  esac
  name=$(xenstore-read /local/domain/0/name 2>&1)
  # XENSTORED_PATH naming a device (not a socket): libxenstore talks through /dev/xen/xenbus,
  # i.e. dom0's kernel xenbus, whose only way to the store is its ring page.
  XENSTORED_PATH=/dev/xen/xenbus xenstore-write /local/domain/0/xenpv-ring-check via-dom0-kernel-ring 2>/tmp/xs-ring.err
  via=$(xenstore-read -s /local/domain/0/xenpv-ring-check 2>&1)
  if [ "$name" = Domain-0 ] && [ "$via" = via-dom0-kernel-ring ]; then
    result xenstored-dom0 PASS "$s" "xenpv xenstored (pid $pid) serves the socket and dom0's ring: name=$name, kernel-ring write read back over the socket; $(grep -m1 "listening on" $XS_LOG)"
  else
    result xenstored-dom0 FAIL "$s" "name='$name' ring-check='$via' $(cat /tmp/xs-ring.err)"
    prefixed xenstored "$XS_LOG" 40
  fi
}

check_xenstored_lifecycle() {
  local s domid intro0 rel0 i
  s=$(up)
  if ! kill -0 "$(cat /run/xenstore.pid)" 2>/dev/null; then
    result xenstored-lifecycle FAIL "$s" "xenpv xenstored is gone"; prefixed xenstored "$XS_LOG" 60; return
  fi
  intro0=$(lines /tmp/watch-intro.log); rel0=$(lines /tmp/watch-release.log)
  if ! xl create -p /etc/xen/domu-blk.cfg >/tmp/xl-create.log 2>&1; then
    result xenstored-lifecycle FAIL "$s" "xl create -p: $(tail -2 /tmp/xl-create.log | tr '\n' ' ')"; prefixed xenstored "$XS_LOG" 40; return
  fi
  domid=$(xl domid domu-blk)
  wait_for 10 sh -c "[ \$(wc -l </tmp/watch-intro.log) -gt $intro0 ]"
  local introduced=no
  [ "$(lines /tmp/watch-intro.log)" -gt "$intro0" ] && introduced=yes
  local ring; ring=$(xenstore-read /local/domain/$domid/store/ring-ref 2>&1)/$(xenstore-read /local/domain/$domid/store/port 2>&1)
  xl destroy domu-blk
  wait_for 20 sh -c "grep -q 'released \[.*\b$domid\b' $XS_LOG"
  wait_for 10 sh -c "[ \$(wc -l </tmp/watch-release.log) -gt $rel0 ]"
  local released=no gone=no events
  grep -q "released \[.*\b$domid\b" $XS_LOG && released=yes
  xenstore-read /local/domain/$domid/name >/dev/null 2>&1 || gone=yes
  events="@introduceDomain seen $(lines /tmp/watch-intro.log)x, @releaseDomain seen $(lines /tmp/watch-release.log)x this boot"
  if [ $introduced = yes ] && [ $released = yes ] && [ $gone = yes ] && [ "$(lines /tmp/watch-release.log)" -gt "$rel0" ]; then
    result xenstored-lifecycle PASS "$s" "dom$domid (store ring-ref/port $ring) introduced, destroyed, released by VIRQ_DOM_EXC; $events; xl list now: $(xl list | awk 'NR>1{printf "%s ", $1}')"
  else
    result xenstored-lifecycle FAIL "$s" "dom$domid introduced=$introduced released=$released nodes-gone=$gone; $events"
    prefixed xenstored "$XS_LOG" 40
  fi
  grep '^xenstored: domains:' $XS_LOG | sed 's/^/xenstored| /'
  [ -n "$XS_WATCHERS" ] && kill $XS_WATCHERS 2>/dev/null
}
