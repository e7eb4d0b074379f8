#!/bin/busybox sh
# PID 1 of the test domU (busybox initramfs). Finds its disk through Linux's xen-blkfront,
# makes ext4 on it, writes files, syncs, reads them back after a remount and compares the
# checksums, then powers off. Prints DOMU-STEP / DOMU-SUM / DOMU-RESULT lines on hvc0.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "DOMU-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"
t0=$(cut -d' ' -f1 /proc/uptime)
step() { echo "DOMU-STEP $* (t=$(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.1f", b-a}') s)"; }
finish() { echo "DOMU-RESULT $*"; sync; poweroff -f; sleep 60; }
if grep -q 'realxen.domu=blkfront' /proc/cmdline; then
  # xenpv's blkfront in userspace: no xen-blkfront here (it would claim the vbd), only the
  # devices the xen platform uses.
  for m in $(cat /mods/xen.list); do insmod /mods/$m 2>/dev/null; done
  step "xen devices: $(ls /dev/xen | tr '\n' ' ')"
  # Bounded: a program stuck in the kernel would otherwise keep the domU up, its output unseen.
  /opt/xenpv/node /opt/xenpv/realxen/xenpv-blkfront.mjs domu 2>&1 &
  i=0; while kill -0 $! 2>/dev/null && [ $i -lt 360 ]; do sleep 0.5; i=$((i+1)); done
  if kill -0 $! 2>/dev/null; then
    # Its own watchdog (150 s) did not speak: the event loop is blocked. Where each thread waits
    # in the kernel says in what (a synchronous xenbus write, a read, an ioctl).
    p=/proc/$!
    echo "XENPV-BLKFRONT stuck: main thread in $(cat $p/task/${p##*/}/wchan 2>/dev/null) (syscall $(cut -d' ' -f1 $p/syscall 2>/dev/null)); threads: $(for t in $p/task/*; do cat $t/wchan 2>/dev/null; echo; done | sort | uniq -c | tr -s ' \n' ' ')"
    # The kernel stacks of node's blocked threads and of xenbus's own threads (the ring reader
    # and the watch runner): who holds what the others wait for.
    for t in $p/task/* $(grep -l '^xenbus\|^xenwatch' /proc/[0-9]*/comm 2>/dev/null | sed 's|/comm$||'); do
      case "$(cat $t/wchan 2>/dev/null)" in ''|0|do_epoll_wait|futex_wait_queue) continue ;; esac
      echo "XENPV-BLKFRONT stack of $(cat $t/comm) ($(cat $t/wchan)): $(cat $t/stack 2>/dev/null | sed 's/^\[<[0-9a-f]*>\] //; s/+0x[0-9a-f/x]*//' | tr '\n' ' ')"
    done
    echo "XENPV-BLKFRONT FAIL still running after 180 s"
  fi
  finish "DONE blkfront"
fi
if grep -q 'realxen.domu=console' /proc/cmdline; then
  # Check 3: hvc0 is carried by xenpv's console daemon in dom0. The kernel's boot messages
  # (loglevel=7) went first; then this output, then a line typed into `xenpv console` in dom0,
  # read from hvc0 and answered with its sha256, so dom0 knows it came through the in ring.
  echo "DOMU-CONSOLE-INIT uptime=$(cut -d' ' -f1 /proc/uptime) stdin=$(readlink /proc/self/fd/0)"
  echo "DOMU-CONSOLE-ASK type a line"
  if read -r -t 180 line; then
    echo "DOMU-CONSOLE-ANSWER $(printf %s "$line" | sha256sum | cut -d' ' -f1) (${#line} bytes)"
  else
    echo "DOMU-CONSOLE-NOINPUT"
  fi
  finish "DONE console"
fi
for m in $(cat /mods/load.list); do insmod /mods/$m 2>/dev/null; done
i=0; while [ ! -b /dev/xvda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
[ -b /dev/xvda ] || finish "FAIL no /dev/xvda after 30 s (blkfront: $(dmesg | grep -i blkfront | tail -2))"
step "xvda present, $(cat /sys/block/xvda/size) sectors; $(dmesg | grep -m1 'blkfront: xvda' | sed 's/^\[[^]]*\] //')"
/sbin/mke2fs.real -q -F -t ext4 -L xenpvtest /dev/xvda >/tmp/mkfs.log 2>&1 || finish "FAIL mke2fs: $(cat /tmp/mkfs.log)"
step "mke2fs -t ext4 done"
mkdir -p /mnt && mount -t ext4 /dev/xvda /mnt || finish "FAIL mount ext4"
step "mounted: $(grep xvda /proc/mounts)"
mkdir -p /mnt/dir
dd if=/dev/urandom of=/mnt/big.bin bs=1M count=24 2>/dev/null || finish "FAIL write big.bin"
dd if=/dev/urandom of=/mnt/mid.bin bs=64k count=37 2>/dev/null
for n in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
  dd if=/dev/urandom of=/mnt/dir/small$n bs=$((n * 517)) count=1 2>/dev/null
done
echo "hello from the domU, through xenpv's blkback" > /mnt/hello.txt
sync
(cd /mnt && sha256sum big.bin mid.bin hello.txt dir/*) > /tmp/sums.txt
cp /tmp/sums.txt /mnt/sums.txt && sync
step "wrote $(du -sk /mnt | cut -f1) KiB in $(find /mnt -type f | wc -l) files and synced"
umount /mnt || finish "FAIL umount"
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 -o ro /dev/xvda /mnt || finish "FAIL remount"
(cd /mnt && sha256sum -c /tmp/sums.txt) >/tmp/check.log 2>&1 || finish "FAIL checksums differ after remount: $(grep -v OK /tmp/check.log | head -3)"
sed 's/^/DOMU-SUM /' /tmp/sums.txt | head -4
step "read back and verified $(wc -l </tmp/sums.txt) checksums after remount"
umount /mnt
finish "PASS ext4 on xvda: mkfs, $(wc -l </tmp/sums.txt) files written, synced, remounted, all checksums equal"
