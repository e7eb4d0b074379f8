#!/bin/bash
# Build what the real-Xen checks boot, from Debian's packages only (apt-get download,
# debootstrap), into a cache folder: Xen 4.17 (xen-hypervisor-4.17-amd64), Debian's kernel
# (dom0 and domU), a debootstrapped dom0 root with xen-utils, this project with the host's node
# binary, and two busybox initramfs. Needs root (debootstrap, chroot) and a Debian mirror.
#   env: REALXEN_CACHE (default .cache/realxen), NODE_BIN (default: node on PATH),
#        XENPV_DIST (the compiled project to copy, default dist/ of this checkout)
# The slow parts (downloads, debootstrap, modules) are cached; the project, the domU initramfs
# and the dom0 disk image are rebuilt each run. Prints BUILD-STEP <name> <seconds> lines.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/scripts/realxen
C=${REALXEN_CACHE:-$ROOT/.cache/realxen}
NODE_BIN=${NODE_BIN:-$(command -v node)}
DIST=${XENPV_DIST:-$ROOT/dist}
mkdir -p "$C/debs" "$C/logs"
cd "$C"
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
t=$(date +%s.%N)
lap() { local n; n=$(date +%s.%N); echo "BUILD-STEP $1 $(awk -v a="$t" -v b="$n" 'BEGIN{printf "%.1f", b-a}')"; t=$n; }

# ---- 1. Xen and the kernel, from Debian's packages --------------------------------------
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
KVER=${KPKG#linux-image-}
if [ ! -f xen ] || [ "$(cat kver 2>/dev/null)" != "$KVER" ]; then
  (cd debs && apt-get download -q -o APT::Sandbox::User=root xen-hypervisor-4.17-amd64 "$KPKG" >/dev/null)
  rm -rf xenpkg kpkg && mkdir xenpkg kpkg
  dpkg-deb -x debs/xen-hypervisor-4.17-amd64_*.deb xenpkg
  dpkg-deb -x debs/"${KPKG}"_*.deb kpkg
  # The hypervisor is a gzipped multiboot ELF32: QEMU's -kernel loads it once unpacked.
  gunzip -c xenpkg/boot/xen-4.17-amd64.gz > xen
  cp "kpkg/boot/vmlinuz-$KVER" vmlinuz
  # The domU gets the uncompressed kernel: libxc's xz inside `xl create` costs ~5 s under TCG.
  python3 -c "import lzma,sys; d=open('vmlinuz','rb').read(); o=d.find(b'\xfd7zXZ\x00'); open('vmlinux','wb').write(lzma.LZMADecompressor().decompress(d[o:]))"
  echo "$KVER" > kver
  rm -f rootfs.ok
fi
lap packages

# ---- 2. dom0 root: debootstrap + security updates (xen-utils must match the hypervisor) --
if [ ! -f rootfs.ok ]; then
  rm -rf rootfs
  debootstrap --variant=minbase \
    --include=xen-utils-4.17,xenstore-utils,kmod,busybox,iproute2,procps,mount,e2fsprogs,libstdc++6 \
    bookworm rootfs "$MIRROR" > logs/debootstrap.log 2>&1
  cp /etc/apt/sources.list.d/debian.sources rootfs/etc/apt/sources.list.d/ 2>/dev/null || true
  [ -f rootfs/etc/apt/sources.list.d/debian.sources ] && rm -f rootfs/etc/apt/sources.list
  printf '#!/bin/sh\nexit 101\n' > rootfs/usr/sbin/policy-rc.d; chmod +x rootfs/usr/sbin/policy-rc.d
  chroot rootfs apt-get update > logs/rootfs-upgrade.log 2>&1
  DEBIAN_FRONTEND=noninteractive chroot rootfs apt-get -y upgrade >> logs/rootfs-upgrade.log 2>&1
  chroot rootfs apt-get clean
  mkdir -p rootfs/usr/lib/modules
  cp -a "kpkg/lib/modules/$KVER" rootfs/usr/lib/modules/
  chroot rootfs depmod "$KVER"
  mkdir -p rootfs/boot && cp vmlinux "rootfs/boot/vmlinux-$KVER"
  touch rootfs.ok
fi
lap dom0-rootfs

# Copy modules and their dependencies (resolved by the rootfs' modprobe) into $1; load order in load.list.
copy_mods() {
  local dst=$1; shift; mkdir -p "$dst"; : > "$dst/load.list"
  for m in "$@"; do
    chroot rootfs modprobe -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}' |
    while read -r p; do
      b=$(basename "$p")
      grep -qx "$b" "$dst/load.list" || { cp "rootfs$p" "$dst/$b"; echo "$b" >> "$dst/load.list"; }
    done
  done
}
# Copy a binary of the rootfs and the shared libraries it needs into $1 (same paths).
copy_bin() {
  local dst=$1 bin=$2 lib
  mkdir -p "$dst$(dirname "$bin")"; cp "rootfs$bin" "$dst$bin"
  for lib in $(chroot rootfs ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$dst$(dirname "$lib")"; cp -L "rootfs$lib" "$dst$lib"
  done
}

# ---- 3. dom0 initramfs: busybox, virtio-blk and ext4, then switch_root to the disk -------
if [ ! -f dom0-initrd.img ] || [ dom0-initrd.img -ot kver ]; then
  rm -rf initrd-dom0 && mkdir -p initrd-dom0/{bin,proc,sys,dev,newroot}
  cp "$(command -v busybox)" initrd-dom0/bin/busybox
  copy_mods initrd-dom0/mods virtio_pci virtio_blk ext4
  cp "$HERE/dom0/initramfs-init.sh" initrd-dom0/init; chmod +x initrd-dom0/init
  (cd initrd-dom0 && find . | cpio -o -H newc --quiet | gzip -1) > dom0-initrd.img
fi
lap dom0-initramfs

# ---- 4. this project, with the host's node, into the dom0 root ---------------------------
X=rootfs/opt/xenpv
rm -rf "$X" && mkdir -p "$X/node_modules/koffi/build/koffi" "$X/realxen"
cp -L "$NODE_BIN" "$X/node"
cp -a "$DIST" "$X/dist"
cp -a "$ROOT/bin" "$ROOT/package.json" "$X/"
cp -a "$ROOT/node_modules/commander" "$ROOT/node_modules/sprintf-js" "$X/node_modules/"
(cd "$ROOT/node_modules/koffi" && cp -a package.json index.js indirect.js lib "$C/$X/node_modules/koffi/")
cp -a "$ROOT/node_modules/koffi/build/koffi/linux_x64" "$X/node_modules/koffi/build/koffi/"
# Every dom0 script (checks, launchers) and the domU's blkfront program.
cp "$HERE"/dom0/*.sh "$HERE"/dom0/*.mjs "$HERE/domu/xenpv-blkfront.mjs" "$X/realxen/"
rm -f "$X/realxen/init.sh" "$X/realxen/initramfs-init.sh"
cp "$HERE/dom0/init.sh" rootfs/sbin/xen-dom0-init; chmod +x rootfs/sbin/xen-dom0-init
# The domUs' xl configs: domu_cfg NAME RAMDISK EXTRA MEMORY_MB [LINE] (LINE: a disk, say).
domu_cfg() {
  {
    printf 'name = "%s"\ntype = "pv"\nkernel = "/boot/vmlinux-%s"\n' "$1" "$KVER"
    printf 'ramdisk = "/opt/xenpv/realxen/%s"\nextra = "console=hvc0 %s"\n' "$2" "$3"
    printf 'memory = %s\nvcpus = 1\n' "$4"
    if [ $# -ge 5 ]; then printf '%s\n' "$5"; fi
    printf 'on_poweroff = "destroy"\non_crash = "preserve"\n'
  } > "rootfs/etc/xen/$1.cfg"
}
# Check 1: no disk in the file; xenpv's toolstack code writes the vbd directories itself.
domu_cfg domu-blk domu-initrd.img "loglevel=4" 256
# Check 2: Linux's blkback serves the disk (xl writes the vbd, the block hotplug script
# attaches the file to a loop device); the domU runs xenpv's blkfront in userspace.
domu_cfg domu-front domu-node-initrd.img "loglevel=4 realxen.domu=blkfront" 512 \
  "disk = [ 'format=raw,vdev=xvda,access=rw,target=/var/lib/xen/images/kernel-blk.img' ]"
# Check 3: no disk; console 0 served by xenpv consoled. loglevel=7: the kernel's whole boot
# log goes through the console (tens of KB through a 2 KB ring, so it wraps many times).
domu_cfg domu-con domu-initrd.img "loglevel=7 realxen.domu=console" 256
lap project

# ---- 5. domU initramfs: busybox, xen-blkfront, ext4, e2fsprogs' mke2fs; and a second one
#         adding the host's node and this project, for xenpv's blkfront in the domU
rm -rf initrd-domu && mkdir -p initrd-domu/{bin,sbin,proc,sys,dev,mnt,tmp,etc}
cp "$(command -v busybox)" initrd-domu/bin/busybox
copy_mods initrd-domu/mods xen-blkfront ext4
copy_mods initrd-domu/modx xen-evtchn xen-gntalloc xen-gntdev xen-privcmd
mv initrd-domu/modx/load.list initrd-domu/mods/xen.list && mv initrd-domu/modx/* initrd-domu/mods/ && rmdir initrd-domu/modx
copy_bin initrd-domu /usr/sbin/mke2fs
mv initrd-domu/usr/sbin/mke2fs initrd-domu/sbin/mke2fs.real
cp rootfs/etc/mke2fs.conf initrd-domu/etc/
cp "$HERE/domu/init.sh" initrd-domu/init; chmod +x initrd-domu/init
(cd initrd-domu && find . | cpio -o -H newc --quiet | gzip -1) > "$X/realxen/domu-initrd.img"
# Uncompressed: unpacking 40 MB of gzip under TCG would cost more than copying 100 MB.
copy_bin initrd-domu /opt/xenpv/node
mkdir -p initrd-domu/opt/xenpv/realxen
cp -a "$X/dist" "$X/node_modules" "$X/package.json" initrd-domu/opt/xenpv/
cp "$X/realxen/xenpv-blkfront.mjs" initrd-domu/opt/xenpv/realxen/
(cd initrd-domu && find . | cpio -o -H newc --quiet) > "$X/realxen/domu-node-initrd.img"
lap domu-initramfs
# The CLI (`xenpv consoled`, `xenpv console` in check 3) loads every command, and `xenpv
# demo`'s chart imports @resvg (native, 4 MB): dom0 gets it, the domU's blkfront needs none.
cp -a "$ROOT/node_modules/@resvg" "$X/node_modules/"

# ---- 6. the dom0 disk image (no loop mount needed) -----------------------------------------
rm -f dom0.img
mke2fs -q -t ext4 -d rootfs -L dom0root dom0.img "$(( $(du -sm rootfs | cut -f1) + 768 ))M"
lap dom0-image
ls -la xen vmlinuz dom0-initrd.img dom0.img "$X/realxen/"
echo BUILD-OK
