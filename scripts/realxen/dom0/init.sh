#!/bin/sh
# PID 1 of the test dom0 (no systemd, no udev): bring up Xen's control plane, run the checks
# named on the dom0 kernel command line (realxen.checks=blkback,...), then power off.
# Markers on the console (hvc0 -> Xen -> QEMU's serial) are what the host harness reads.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
[ -e /dev/null ] || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
# udev would make these; the hotplug scripts' locking (claim_lock) spins forever without /dev/stdin.
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
hostname dom0
echo "REALXEN-DOM0-INIT uptime=$(cut -d' ' -f1 /proc/uptime) hv=$(cat /sys/hypervisor/type) $(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor)$(cat /sys/hypervisor/version/extra)"
modprobe xenfs && mount -t xenfs xenfs /proc/xen
# No xen-blkback here: Linux's blkback watches backend/vbd too, and the first check is that
# xenpv's blkback alone serves the disk. The check of our frontend loads it itself.
modprobe -a xen-evtchn xen-gntdev xen-gntalloc xen-privcmd loop
mkdir -p /run/lock /run/xenstored /run/xen /var/log/xen/console /var/lib/xen/images
XENSTORED=c
grep -q 'realxen.xenstored=xenpv' /proc/cmdline && XENSTORED=xenpv
if [ "$XENSTORED" = xenpv ]; then
  /opt/xenpv/realxen/start-xenpv-xenstored.sh
else
  XENSTORED_ROOTDIR=/run/xenstored /usr/lib/xen-4.17/bin/xenstored --pid-file /run/xenstore.pid
fi
i=0; until xenstore-read -s / >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 200 ] && break; sleep 0.1; done
/usr/lib/xen-4.17/bin/xen-init-dom0
/usr/lib/xen-4.17/bin/xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
echo "REALXEN-DOM0-READY xenstored=$XENSTORED uptime=$(cut -d' ' -f1 /proc/uptime)"
cd /root
export HOME=/root TERM=dumb
checks=$(sed -n 's/.*realxen.checks=\([^ ]*\).*/\1/p' /proc/cmdline)
grep -q 'realxen.trace=1' /proc/cmdline && export XENPV_XEN_TRACE=1
grep -q 'realxen.keepmaps=1' /proc/cmdline && export XENPV_XEN_KEEP_MAPS=1
if [ -n "$checks" ]; then
  /opt/xenpv/realxen/checks.sh "$checks" </dev/null >/dev/hvc0 2>&1
  echo "REALXEN-POWEROFF" >/dev/hvc0
  sync
  echo o > /proc/sysrq-trigger
  sleep 30
fi
while true; do setsid -w -c bash -l </dev/hvc0 >/dev/hvc0 2>&1; done
