#!/bin/bash
# build_lab.sh - (re)build the nested KVM lab artefacts on L0.
#   * reduced module tree for kernel 6.1.0-47-amd64 (+depmod)
#   * L1 initramfs  (busybox-static, qemu-system-x86_64, trace-cmd, perf + libs, firmware, modules)
#   * L2 initramfs  (busybox-static + virtio modules + workload init)  -> share/l2/
#   * raw disk images that L1 sees as /dev/vda..vdc (backing stores for the L2 virtio disks)
# Only uses files already on this machine (the Debian kernel .deb extracted in /tmp/vm/k) and
# Debian packages (apt-get).  No downloads outside the package registries.
set -euo pipefail
LAB=/tmp/kvmlab
KV=6.1.0-47-amd64
KSRC=/tmp/vm/k                      # dpkg -x linux-image-6.1.0-47-amd64_*.deb /tmp/vm/k
B=$LAB/build
if [ ! -f $KSRC/boot/vmlinuz-$KV ]; then
  mkdir -p /tmp/vm $KSRC
  ls /tmp/vm/linux-image-${KV}_*_amd64.deb >/dev/null 2>&1 || (cd /tmp/vm && apt-get download linux-image-$KV)
  dpkg -x /tmp/vm/linux-image-${KV}_*_amd64.deb $KSRC
fi
for p in busybox-static qemu-system-x86 trace-cmd linux-perf cpio kmod; do
  dpkg -s $p >/dev/null 2>&1 || apt-get install -y $p
done

# ---------- 1. reduced module tree ----------
MODS="kvm kvm-amd irqbypass vhost vhost_net vhost_iotlb tun tap bridge stp llc
      virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev
      virtio_blk virtio_net net_failover failover 9p 9pnet 9pnet_virtio netfs fscache"
rm -rf $B/modroot; mkdir -p $B/modroot/lib/modules/$KV/kernel
KM=$KSRC/lib/modules/$KV
# add dependencies recursively (modinfo depends), e.g. kvm-amd -> kvm,ccp ; ccp -> ...
todo="$MODS"; all=""
while [ -n "$todo" ]; do set -- $todo; m=$1; shift; todo="$*"
  case " $all " in *" $m "*) continue;; esac; all="$all $m"
  f=$(find $KM/kernel \( -name "$m.ko" -o -name "${m//_/-}.ko" \) | head -1)
  [ -n "$f" ] || { echo "module $m not found"; exit 1; }
  todo="$todo $(modinfo -F depends $f | tr ',' ' ')"
done
MODS="$all"
for m in $MODS; do
  f=$(find $KM/kernel \( -name "$m.ko" -o -name "${m//_/-}.ko" \) | head -1)
  [ -n "$f" ] || { echo "module $m not found"; exit 1; }
  rel=${f#$KM/}; mkdir -p $B/modroot/lib/modules/$KV/$(dirname $rel); cp $f $B/modroot/lib/modules/$KV/$rel
done
cp $KM/modules.builtin $KM/modules.builtin.modinfo $KM/modules.order $B/modroot/lib/modules/$KV/
depmod -b $B/modroot $KV

# helper: copy a binary and all shared libs reported by ldd into root $1
copy_bin() { local root=$1; shift
  for bin in "$@"; do
    mkdir -p $root$(dirname $bin); cp -L $bin $root$bin
    ldd $bin 2>/dev/null | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | while read l; do
      [ -f "$l" ] || continue; mkdir -p $root$(dirname $l); cp -Ln $l $root$l; done
  done; }

# ---------- 2. L1 initramfs ----------
R=$B/l1root; rm -rf $R; mkdir -p $R/{bin,sbin,etc,proc,sys,dev,tmp,share,root,run,usr/share,usr/lib/x86_64-linux-gnu}
cp /bin/busybox $R/bin/busybox
copy_bin $R /usr/bin/qemu-system-x86_64 /usr/bin/trace-cmd /usr/bin/perf
# perf is a wrapper on Debian? (/usr/bin/perf -> perf_6.1); copy the real versioned binary too
for f in /usr/bin/perf_*; do [ -e "$f" ] && copy_bin $R $f; done
mkdir -p $R/lib64; cp -L /lib64/ld-linux-x86-64.so.2 $R/lib64/
# qemu modules (accel/tcg etc. are loadable modules on Debian) + firmware/ROMs
cp -a /usr/lib/x86_64-linux-gnu/qemu $R/usr/lib/x86_64-linux-gnu/ 2>/dev/null || true
for so in $R/usr/lib/x86_64-linux-gnu/qemu/*.so; do   # libs for the modules (ignore failures)
  ldd $so 2>/dev/null | awk '/=>/ {print $3}' | while read l; do [ -f "$l" ] && { mkdir -p $R$(dirname $l); cp -Ln $l $R$l; }; done; done
mkdir -p $R/usr/share/qemu $R/usr/share/seabios
cp -L /usr/share/qemu/{qboot.rom,linuxboot.bin,linuxboot_dma.bin,kvmvapic.bin,pvh.bin,multiboot.bin,multiboot_dma.bin} $R/usr/share/qemu/
cp -L /usr/share/seabios/*.bin $R/usr/share/seabios/
for f in /usr/share/seabios/*.bin; do ln -sf ../seabios/$(basename $f) $R/usr/share/qemu/$(basename $f) 2>/dev/null || true; done
cp -a $B/modroot/lib/modules $R/lib/
# tap helper used by qemu -netdev tap,script=/etc/qemu-ifup
cat > $R/etc/qemu-ifup <<'EOS'
#!/bin/sh
ip link set "$1" up
brctl addif br0 "$1"
EOS
chmod +x $R/etc/qemu-ifup
echo 'root:x:0:0:root:/root:/bin/sh' > $R/etc/passwd; echo 'root:x:0:' > $R/etc/group
cp $LAB/scripts/l1_init $R/init; chmod +x $R/init
(cd $R && find . | cpio -o -H newc --quiet) > $B/l1-initramfs.cpio
echo "L1 initramfs: $(du -h $B/l1-initramfs.cpio | cut -f1)"

# ---------- 3. L2 kernel + initramfs (served to L1 over 9p: share/l2) ----------
R2=$B/l2root; rm -rf $R2; mkdir -p $R2/{bin,proc,sys,dev,tmp,lib/mod}
cp /bin/busybox $R2/bin/busybox
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk failover net_failover virtio_net; do
  cp $(find $B/modroot -name "$m.ko") $R2/lib/mod/; done
cp $LAB/scripts/l2_init $R2/init; chmod +x $R2/init
mkdir -p $LAB/share/l2
(cd $R2 && find . | cpio -o -H newc --quiet) | gzip -1 > $LAB/share/l2/initrd.img
cp $KSRC/boot/vmlinuz-$KV $LAB/share/l2/vmlinuz
echo "L2 initrd: $(du -h $LAB/share/l2/initrd.img | cut -f1)"

# ---------- 4. disks that L1 sees as /dev/vda /dev/vdb /dev/vdc (one per L2 VM) ----------
for i in 1 2 3; do [ -f $LAB/disks/d$i.img ] || truncate -s 256M $LAB/disks/d$i.img; done
echo done
