#!/bin/busybox sh
# dom0's initramfs: load virtio-blk and ext4, mount the root disk, hand over to its init.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
echo "REALXEN-DOM0-INITRAMFS uptime=$(cut -d' ' -f1 /proc/uptime)"
for m in $(cat /mods/load.list); do insmod /mods/$m 2>/dev/null; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "REALXEN-DOM0-ROOT-MOUNT-FAILED"; exec sh; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/xen-dom0-init
