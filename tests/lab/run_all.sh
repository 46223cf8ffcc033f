#!/bin/bash
# run_all.sh [SCENARIO ...] - run each scenario in its own L1 boot (run_l1.sh), with a watchdog:
# the nested TCG lab occasionally hangs L1 (soft lockup / RCU stall on both vCPUs, seen ~1 in 4 scenarios);
# then the boot is killed and the scenario retried (up to 3 tries).  Results: share/out/<scenario>/
LAB=/tmp/kvmlab; WDUR=${WDUR:-8}
SCENS=${@:-s1_idle s2_cpu s3_disk s4_net s5_overcommit s6_mixed s7_alt}   # or m1_memory p1_phases x1_cross
for s in $SCENS; do
  for try in $(seq ${TRIES:-3}); do
    rm -rf $LAB/share/out/$s
    $LAB/scripts/run_l1.sh $s $WDUR > $LAB/logs/run_all.$s.$try.out 2>&1 &
    qp=$!; sleep 2; log=$(sed -n 's/^log: //p' $LAB/logs/run_all.$s.$try.out)
    t=0; status=timeout
    while [ $t -lt ${MAXT:-300} ]; do     # MAXT=1200 on a loaded machine (QEMU runs at nice 19)
      sleep 5; t=$((t+5))
      if ! kill -0 $qp 2>/dev/null; then status=exited; break; fi
      if grep -qE 'soft lockup|self-detected stall|rcu_preempt detected stall|Kernel panic' $log; then status=hung; break; fi
    done
    kill -0 $qp 2>/dev/null && { kill $qp; wait $qp 2>/dev/null; }
    if [ $status = exited ] && grep -q "$s: saved" $log && ! grep -qE 'soft lockup|stall' $log; then
      echo "$s: OK (try $try, $log)"; break
    fi
    echo "$s: try $try failed ($status), log $log"
  done
done
