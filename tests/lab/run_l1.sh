#!/bin/bash
# run_l1.sh SCENARIOS [WDUR]  - boot L1 under QEMU TCG (emulated AMD SVM + NPT), run scenarios, power off.
#   INITRD=/tmp/kvmlab/build/l1-initramfs-lttng.cpio run_l1.sh s6_mixed_lttng   (after build_lttng.sh)
#   e.g. run_l1.sh s1_idle,s2_cpu 8      -> results in /tmp/kvmlab/share/out/<scenario>/
set -u
LAB=/tmp/kvmlab; KV=6.1.0-47-amd64
SCEN=${1:-s1_idle}; WDUR=${2:-8}
mkdir -p $LAB/share/scripts $LAB/logs
cp $LAB/scripts/l1_run.sh $LAB/share/scripts/      # L1 reads its scenario runner over 9p
LOG=$LAB/logs/l1-$(date +%H%M%S)-${SCEN//,/_}.log
echo "log: $LOG"
TCG_THREAD=${TCG_THREAD:-multi}   # MTTCG. NB: thread=single is far too slow for L2 (2-vCPU L2 not booted after 3 min) but
                                   # MTTCG + nested SVM hangs L1 in ~1 of 4 scenarios -> run_all.sh retries
exec nice -n 19 qemu-system-x86_64 -accel tcg,thread=$TCG_THREAD,tb-size=1024 -M pc -cpu qemu64,+svm,+npt \
  -smp 2 -m 3072 -nodefaults -no-user-config -display none -monitor none -serial stdio \
  -kernel /tmp/vm/k/boot/vmlinuz-$KV -initrd ${INITRD:-$LAB/build/l1-initramfs.cpio} \
  -append "console=ttyS0 loglevel=4 tsc=reliable scen=$SCEN wdur=$WDUR tcg=$TCG_THREAD" \
  -virtfs local,path=$LAB/share,mount_tag=share,security_model=none,id=share \
  -drive file=$LAB/disks/d1.img,if=virtio,format=raw,cache=unsafe \
  -drive file=$LAB/disks/d2.img,if=virtio,format=raw,cache=unsafe \
  -drive file=$LAB/disks/d3.img,if=virtio,format=raw,cache=unsafe \
  -no-reboot > $LOG 2>&1
