#!/bin/sh
# l1_run.sh - runs INSIDE L1 (read from the 9p share).  Boots L2 guests with KVM (kvm_amd),
# runs the requested scenarios and records host traces with trace-cmd and perf.
# Scenario list: kernel cmdline  scen=s1,s2,...   workload duration: wdur=<sec> (default 8)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
SCEN=${scen:-$(sed -n 's/.*scen=\([^ ]*\).*/\1/p' /proc/cmdline)}
WDUR=${wdur:-8}
TR=$((WDUR + 4))                  # length of each recording (s): 2 s before GO, 2 s after the workload
T=/sys/kernel/tracing
TC_EV="-e kvm -e sched -e irq -e irq_vectors -e block -e net -e timer:hrtimer_*"
# perf: all kvm events EXCEPT kvm:kvm_emulate_insn (its u8 insn[15] array makes perf 6.1
# `perf data convert --to-ctf` fail with "CTF stream N flush failed" -> corrupt CTF; found with diag_ctf).
# irq_vectors:* and timer:hrtimer_* are left out too: perf runs with them hung L1 (RCU stall/soft lockup).
KVM_EV=""; for e in $T/events/kvm/*/; do e=${e%/}; e=${e##*/}; [ "$e" = kvm_emulate_insn ] || KVM_EV="$KVM_EV -e kvm:$e"; done
PERF_EV=${PERF_EV:-"$KVM_EV -e sched:* -e irq:* -e block:* -e net:*"}
log() { echo "L1[$(cut -d' ' -f1 /proc/uptime)] $*"; }

log "kernel $(uname -r); cpu: $(grep -m1 'model name' /proc/cpuinfo); svm: $(grep -c -w svm /proc/cpuinfo); npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)"
ls -l /dev/kvm /dev/vhost-net /dev/net/tun 2>&1
mkdir -p /tmp/l2 && cp /share/l2/vmlinuz /share/l2/initrd.img /tmp/l2/
brctl addbr br0; echo 0 > /sys/class/net/br0/bridge/stp_state; echo 0 > /sys/class/net/br0/bridge/forward_delay
ip addr add 10.0.0.1/24 dev br0; ip link set br0 up

VMS=""   # names of running VMs
# launch_vm NAME WORKLOAD NCPU PIN(cpu list or -) DISK IDX [MEM_MB] [EXTRA_KERNEL_ARGS]
launch_vm() {
  name=$1 wl=$2 ncpu=$3 pin=$4 disk=$5 idx=$6 mem=${7:-256} extra=${8:-}
  rm -f /tmp/$name.in /tmp/$name.out; mkfifo /tmp/$name.in /tmp/$name.out
  cat /tmp/$name.out > /tmp/$name.log &
  eval "${name}_cat=$!"
  ts=""; [ "$pin" != "-" ] && ts="taskset -c $pin"
  $ts qemu-system-x86_64 -name $name,debug-threads=on -enable-kvm -M pc -cpu host -smp $ncpu -m $mem \
    -nodefaults -no-user-config -display none -bios /usr/share/qemu/qboot.rom \
    -kernel /tmp/l2/vmlinuz -initrd /tmp/l2/initrd.img \
    -append "console=ttyS0 loglevel=3 wl=$wl l2ip=10.0.0.1$idx $extra" \
    -chardev pipe,id=ser0,path=/tmp/$name -serial chardev:ser0 \
    -object iothread,id=io$idx \
    -drive file=$disk,if=none,id=d0,format=raw,cache=none,aio=native \
    -device virtio-blk-pci,drive=d0,iothread=io$idx \
    -netdev tap,id=n0,ifname=tap$idx,script=/etc/qemu-ifup,downscript=no,vhost=on \
    -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:1$idx,romfile= \
    > /tmp/$name.qemu.log 2>&1 &
  pid=$!
  eval "${name}_pid=$pid ${name}_wl=$wl ${name}_ncpu=$ncpu ${name}_pin=$pin ${name}_disk=$disk ${name}_idx=$idx ${name}_mem=$mem"
  eval "${name}_extra=\"$extra\""; : > /tmp/$name.thr
  VMS="$VMS $name"
  log "launched $name pid=$pid wl=$wl ncpu=$ncpu pin=$pin disk=$disk"
}
wait_ready() {   # wait until every VM printed READY (max 900 s)
  for n in $VMS; do
    i=0; while ! grep -q READY /tmp/$n.log 2>/dev/null; do
      sleep 2; i=$((i+2)); [ $i -gt 900 ] && { log "TIMEOUT waiting for $n"; cat /tmp/$n.log /tmp/$n.qemu.log; return 1; }
    done; log "$n ready: $(grep READY /tmp/$n.log)"; done
}
go_all() {  # send the GO command to every VM, marker into the ftrace buffer
  echo "LAB_GO dur=$WDUR vms=$VMS" > $T/trace_marker
  for n in $VMS; do echo "go $WDUR" > /tmp/$n.in; done
}
json_vm() {  # emit the manifest JSON object for VM $1
  n=$1; eval "pid=\$${n}_pid wl=\$${n}_wl ncpu=\$${n}_ncpu pin=\$${n}_pin disk=\$${n}_disk idx=\$${n}_idx mem=\$${n}_mem"
  vcpus=""; ios=""; thr=""
  snap_threads $n
  for tid in $(cut -d' ' -f1 /tmp/$n.thr | sort -un); do c=$(grep -m1 "^$tid " /tmp/$n.thr | cut -d' ' -f2-)
    aff=$(taskset -p $tid 2>/dev/null | sed 's/.*: //')
    thr="$thr{\"tid\":$tid,\"comm\":\"$c\",\"affinity_mask\":\"$aff\"},"
    case "$c" in "CPU "*"/KVM") k=${c#CPU }; k=${k%/KVM}; vcpus="$vcpus\"$k\":$tid,";;
                 "IO "*) ios="$ios$tid,";; esac
  done
  vh=""; for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = "vhost-$pid" ] && vh="$vh${d#/proc/},"; done
  printf '{"name":"%s","qemu_pid":%s,"main_thread_tid":%s,"vcpu_tids":{%s},"iothread_tids":[%s],"vhost_tids":[%s],' \
    $n $pid $pid "${vcpus%,}" "${ios%,}" "${vh%,}"
  eval "vx=\${${n}_json:-}"
  printf '%s"workload":"%s","vcpus":%s,"pinning":"%s","memory_mb":%s,"disk_backing":"%s (L1 virtio disk, cache=none,aio=native, iothread)","net":{"tap":"tap%s","bridge":"br0","vhost":true,"mac":"52:54:00:00:00:1%s","ip":"10.0.0.1%s"},"threads":[%s]}' \
    "$vx" "$wl" $ncpu "$pin" $mem $disk $idx $idx $idx "${thr%,}"
}
write_manifest() {  # $1 = outdir, $2 = scenario, $3 = description
  o=$1; { printf '{"scenario":"%s","description":"%s","l1_kernel":"%s","l1_arch":"x86_64","exit_isa":"SVM","npt":"%s",' "$2" "$3" "$(uname -r)" "$(cat /sys/module/kvm_amd/parameters/npt)"
    printf '"l1_cpus":%s,"l1_cpu_model":"%s","l1_hypervisor_of_l1":"QEMU 7.2 TCG thread=%s (-cpu qemu64,+svm,+npt; TCG has no nrip-save)","trace_clock":"mono","trace_cmd_events":"kvm:* sched:* irq:* irq_vectors:* block:* net:* timer:hrtimer_*","perf_events":"kvm:* except kvm:kvm_emulate_insn, sched:*, irq:*, block:*, net:*","workload_duration_s":%s,' $(nproc) "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" ${tcg:-multi} $WDUR
    printf '"phases":{"trace-cmd":{"file":"trace.dat","record_len_s":%s,"go_l1_uptime_s":%s},"perf":{"file":"perf.data / ctf/","record_len_s":%s,"go_l1_uptime_s":%s}},' $TR ${GO_TC:-null} $TR ${GO_PF:-null}
    printf '"net_peer":"L1 br0 10.0.0.1, nc -l -p 5001 > /dev/null","vms":['
    first=1; for n in $VMS; do [ $first = 1 ] || printf ','; first=0; json_vm $n; done
    printf ']}\n'; } > $o/manifest.json
}
# TCP sink for the net workload. busybox nc exits when ITS stdin hits EOF (a background job's stdin is
# /dev/null), so keep its stdin open with a FIFO held by a sleeping writer.
start_listener() { for n in $VMS; do eval "w=\$${n}_wl"; if [ "$w" = net ]; then
    rm -f /tmp/nchold; mkfifo /tmp/nchold; sleep 100000 > /tmp/nchold & LPID="$LPID $!"
    nc -l -p 5001 < /tmp/nchold > /dev/null & LPID="$LPID $!"; fi; done; }
stop_listener() { for p in $LPID; do kill $p 2>/dev/null; done; LPID=""; }

record() {  # $1 scenario name  $2 description
  s=$1; o=/tmp/out/$s; mkdir -p $o
  wait_ready || return 1
  sleep 3
  # ---- phase 1: trace-cmd ----
  start_listener
  log "$s: trace-cmd record"
  trace-cmd record -q -C mono -b 8192 $TC_EV -o $o/trace.dat -- sleep $TR > $o/trace-cmd.log 2>&1 &
  tcp=$!
  # wait until trace-cmd has really started (events enabled + tracing_on=1), then GO
  i=0; while [ "$(cat $T/events/kvm/kvm_exit/enable)" != 1 ] || [ "$(cat $T/tracing_on)" != 1 ]; do sleep 0.2; i=$((i+1)); [ $i -gt 100 ] && break; done
  sleep 1.5; GO_TC=$(cut -d' ' -f1 /proc/uptime); go_all
  sleep 1; write_manifest $o $s "$2"      # thread list while the workload runs
  wait $tcp; log "$s: trace-cmd done rc=$?"; stop_listener
  mkdir -p /share/out/$s && cp -a $o/. /share/out/$s/ && sync
  sleep 2
  # ---- phase 2: perf ----
  start_listener
  log "$s: perf record"
  perf record -q -a -k mono -m 1024 $PERF_EV -o $o/perf.data -- sleep $TR > $o/perf.log 2>&1 &
  pfp=$!
  sleep 3; GO_PF=$(cut -d' ' -f1 /proc/uptime); for n in $VMS; do echo "go $WDUR" > /tmp/$n.in; done
  wait $pfp; log "$s: perf done rc=$?"; stop_listener
  write_manifest $o $s "$2"
  for n in $VMS; do cp /tmp/$n.log $o/$n.console.log; cp /tmp/$n.qemu.log $o/$n.qemu.log; done
  mkdir -p /share/out/$s && cp -a $o/. /share/out/$s/ && sync
  log "$s: saved $(du -sh $o | cut -f1)"
}
record_lttng() {  # $1 scenario  $2 description ; LTTng kernel session, CTF output in $o/lttng
  s=$1; o=/tmp/out/$s; mkdir -p $o /var/run /var/lib /root
  wait_ready || return 1
  export HOME=/root
  lttng-sessiond --daemonize > $o/lttng-sessiond.log 2>&1; sleep 5
  lsmod | grep -c lttng | sed 's/^/lttng modules loaded: /'
  lttng create $s --output=$o/lttng > $o/lttng.log 2>&1
  lttng enable-channel -k --subbuf-size=1M --num-subbuf=8 ch0 >> $o/lttng.log 2>&1
  lttng enable-event -k -c ch0 "${LTTNG_EVENTS:-kvm_*,sched_*,irq_*,block_*,net_*,hrtimer_*,timer_hrtimer_*}" >> $o/lttng.log 2>&1
  lttng add-context -k -c ch0 -t tid -t pid -t procname >> $o/lttng.log 2>&1
  start_listener; sleep 2
  lttng start >> $o/lttng.log 2>&1; sleep 2
  GO_TC=$(cut -d' ' -f1 /proc/uptime); for n in $VMS; do echo "go $WDUR" > /tmp/$n.in; done
  sleep 1; GO_PF=null; write_manifest $o $s "$2"
  sleep $((WDUR + 1))
  lttng stop >> $o/lttng.log 2>&1; lttng destroy >> $o/lttng.log 2>&1; stop_listener
  sed -i 's/"phases":{"trace-cmd":{"file":"trace.dat"/"phases":{"lttng":{"file":"lttng\/ (CTF)"/' $o/manifest.json
  for n in $VMS; do cp /tmp/$n.log $o/$n.console.log; cp /tmp/$n.qemu.log $o/$n.qemu.log; done
  mkdir -p /share/out/$s && cp -a $o/. /share/out/$s/ && sync
  log "$s: saved $(du -sh $o | cut -f1)"
}

# ======== trace-cmd-only recordings with a scenario driver (m1_memory, p1_phases, x1_cross) ========
up() { cut -d' ' -f1 /proc/uptime; }
snap_threads() {  # append "tid comm" of every thread of VM $1 (the manifest lists the union of all snapshots)
  eval "p=\$${1}_pid"; for t in /proc/$p/task/*; do c=$(cat $t/comm 2>/dev/null) && echo "${t##*/} $c"; done >> /tmp/$1.thr; }
mark() { echo "$*" > $T/trace_marker; }   # ftrace print event in the trace (tracing_mark_write)
wait_line() {  # wait_line VM PATTERN COUNT MAX_S : wait until the VM's console shows COUNT lines matching PATTERN
  i=0; while [ "$(grep -c "$2" /tmp/$1.log 2>/dev/null)" -lt $3 ]; do sleep 0.2; i=$((i+1)); [ $i -gt $(($4 * 5)) ] && return 1; done; return 0; }
rss_of() { awk '/^(VmRSS|RssAnon|RssFile|RssShmem):/ {printf "\"%s_kb\":%s,", $1, $2}' /proc/$1/status | sed 's/:_kb/_kb/g; s/,$//'; }
console_json() {  # the guest's protocol lines (READY, WL_START/WL_STOP, TOUCH_*, FETCH, SERVE, dd's summary) as a JSON array
  tr -d '\r' < /tmp/$1.log | grep -E '^(READY|WL_START|WL_STOP|TOUCH_|FETCH|SERVE|[0-9]+ bytes|[0-9]+\+[0-9]+ records)' | sed 's/"/\\"/g; s/.*/"&",/' | tr -d '\n' | sed 's/,$//'; }
tc_ev_desc() { d=""; for e in $(echo "$TC_EV" | sed 's/-e //g'); do case $e in *:*) d="$d $e";; *) d="$d $e:*";; esac; done; echo ${d# }; }
write_manifest_tc() {  # $1 = outdir, $2 = scenario, $3 = description ; SCEN_JSON: extra top-level fields (each followed by a comma)
  o=$1; { printf '{"scenario":"%s","description":"%s","l1_kernel":"%s","l1_arch":"x86_64","exit_isa":"SVM","npt":"%s",' "$2" "$3" "$(uname -r)" "$(cat /sys/module/kvm_amd/parameters/npt)"
    printf '"l1_cpus":%s,"l1_cpu_model":"%s","l1_memory_mb":%s,"l1_hypervisor_of_l1":"QEMU 7.2 TCG thread=%s (-cpu qemu64,+svm,+npt; TCG has no nrip-save)","trace_clock":"mono","trace_cmd_events":"%s",' \
      $(nproc) "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" $(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 )) ${tcg:-multi} "$(tc_ev_desc)"
    printf '"l1_transparent_hugepage":"%s","l1_ksm_run":%s,' "$(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled)" "$(cat /sys/kernel/mm/ksm/run 2>/dev/null || echo null)"
    printf '"phases":{"trace-cmd":{"file":"trace.dat","record_cmd":"trace-cmd record -q -C mono -b 8192 %s -o trace.dat -- <wait for the driver>","record_len_s":%s,"record_start_l1_uptime_s":%s,"record_stop_l1_uptime_s":%s,"go_l1_uptime_s":%s}},' \
      "$TC_EV" $(awk "BEGIN {printf \"%.2f\", $REC_STOP - $REC_START}") $REC_START $REC_STOP ${GO_TC:-null}
    printf '%s' "$SCEN_JSON"
    printf '"vms":['
    first=1; for n in $VMS; do [ $first = 1 ] || printf ','; first=0; json_vm $n; done
    printf ']}\n'; } > $o/manifest.json
}
record_tc() {  # $1 scenario  $2 description  $3 driver function (runs while trace-cmd records; ends the recording
               # by touching /tmp/stoprec).  Events: $TC_EV.  Trace time = CLOCK_MONOTONIC = L1 uptime.
  s=$1; o=/tmp/out/$s; mkdir -p $o; rm -f /tmp/stoprec
  wait_ready || return 1
  sleep 3
  [ -n "${PRE_REC:-}" ] && $PRE_REC
  log "$s: trace-cmd record -C mono $TC_EV"
  trace-cmd record -q -C mono -b 8192 $TC_EV -o $o/trace.dat -- sh -c 'while [ ! -e /tmp/stoprec ]; do sleep 0.1; done' > $o/trace-cmd.log 2>&1 &
  tcp=$!
  i=0; while [ "$(cat $T/events/kvm/kvm_exit/enable)" != 1 ] || [ "$(cat $T/tracing_on)" != 1 ]; do sleep 0.1; i=$((i+1)); [ $i -gt 200 ] && break; done
  REC_START=$(up); mark "LAB_REC_START l1_uptime=$REC_START"
  ( while [ ! -e /tmp/stoprec ]; do for n in $VMS; do snap_threads $n; done; sleep 1; done ) &
  snp=$!
  $3
  mark "LAB_REC_STOP"; REC_STOP=$(up); touch /tmp/stoprec
  wait $tcp; log "$s: trace-cmd done rc=$? ($REC_START .. $REC_STOP)"; wait $snp
  [ -n "${POST_REC:-}" ] && $POST_REC
  write_manifest_tc $o $s "$2"
  for n in $VMS; do cp /tmp/$n.log $o/$n.console.log; cp /tmp/$n.qemu.log $o/$n.qemu.log; done
  cp $o/manifest.json /tmp/out/$s.manifest.json
  mkdir -p /share/out/$s && cp -a $o/. /share/out/$s/ && sync
  log "$s: saved $(du -sh $o | cut -f1)"
}
# --- m1_memory: one 1-vCPU 512 MiB VM, idle; 2 s after the start the guest writes touch_mb MiB once into tmpfs
m1_pre() { RSS0=$(rss_of $vm1_pid); RSS0_T=$(up); }
m1_drive() {
  sleep 2; GO_TC=$(up); mark "LAB_GO vm1 go 0 touch (touch ${TOUCH_MB} MiB once)"; echo "go 0 touch" > /tmp/vm1.in
  wait_line vm1 '^WL_STOP' 1 ${MAXW:-120} || log "m1: no WL_STOP"
  STOP_SEEN=$(up); mark "LAB_WL_STOP seen vm1 touch"; RSS1=$(rss_of $vm1_pid); RSS1_T=$STOP_SEEN
  sleep ${TAIL:-4}; RSS2=$(rss_of $vm1_pid); RSS2_T=$(up); }
m1_post() {
  SCEN_JSON=$(printf '"memory":{"vm":"vm1","touched_mib":%s,"touched_bytes":%s,"how":"guest: dd if=/dev/zero of=/dev/shm/fill bs=1M count=%s (tmpfs in the guest; the file is kept, so its pages stay allocated), once",' $TOUCH_MB $((TOUCH_MB * 1048576)) $TOUCH_MB
    printf '"go_l1_uptime_s":%s,"wl_stop_seen_l1_uptime_s":%s,"guest_console":[%s],' $GO_TC $STOP_SEEN "$(console_json vm1)"
    printf '"host_rss":[{"l1_uptime_s":%s,"when":"before the recording",%s},{"l1_uptime_s":%s,"when":"WL_STOP seen",%s},{"l1_uptime_s":%s,"when":"end of the recording",%s}],' $RSS0_T "$RSS0" $RSS1_T "$RSS1" $RSS2_T "$RSS2"
    a0=$(echo "$RSS0" | sed 's/.*"RssAnon_kb":\([0-9]*\).*/\1/'); a2=$(echo "$RSS2" | sed 's/.*"RssAnon_kb":\([0-9]*\).*/\1/')
    printf '"host_rss_anon_rise_kb":%s,"page_events":"%s","ksm_tracepoints":%s},' $((a2 - a0)) "$PAGE_EV" $KSM_TP); }
# --- p1_phases: one 1-vCPU VM, go 8 cpu, then (after its WL_STOP) go 8 disk
p1_drive() {
  sleep 1.5; GO_TC=$(up); mark "LAB_GO vm1 go 8 cpu"; echo "go 8 cpu" > /tmp/vm1.in
  wait_line vm1 '^WL_STOP' 1 60 || log "p1: no WL_STOP 1"
  STOP1=$(up); mark "LAB_WL_STOP seen vm1 cpu"
  GO2=$(up); mark "LAB_GO vm1 go 8 disk"; echo "go 8 disk" > /tmp/vm1.in
  wait_line vm1 '^WL_STOP' 2 60 || log "p1: no WL_STOP 2"
  STOP2=$(up); mark "LAB_WL_STOP seen vm1 disk"; sleep 1.5; }
p1_post() {
  g() { tr -d '\r' < /tmp/vm1.log | grep "^$1 $2 " | sed 's/.*uptime=//' | head -1; }
  SCEN_JSON=$(printf '"phases_workload":[{"workload":"cpu","go":"go 8 cpu","go_sent_l1_uptime_s":%s,"wl_stop_seen_l1_uptime_s":%s,"guest_wl_start_uptime_s":%s,"guest_wl_stop_uptime_s":%s},' $GO_TC $STOP1 $(g WL_START cpu) $(g WL_STOP cpu)
    printf '{"workload":"disk","go":"go 8 disk","go_sent_l1_uptime_s":%s,"wl_stop_seen_l1_uptime_s":%s,"guest_wl_start_uptime_s":%s,"guest_wl_stop_uptime_s":%s}],' $GO2 $STOP2 $(g WL_START disk) $(g WL_STOP disk)
    printf '"guest_console":[%s],' "$(console_json vm1)"); }
# --- x1_cross: vm2 serves /www/f (busybox httpd), vm1 fetches it again and again (busybox wget) for 8 s
x1_drive() {
  sleep 1.5; GO_TC=$(up); mark "LAB_GO vm2 go 10 serve; vm1 go 8 fetch"; echo "go 10 serve" > /tmp/vm2.in; echo "go 8 fetch" > /tmp/vm1.in
  wait_line vm1 '^WL_STOP' 1 60 || log "x1: no WL_STOP vm1"; STOP1=$(up); mark "LAB_WL_STOP seen vm1 fetch"
  wait_line vm2 '^WL_STOP' 1 60 || log "x1: no WL_STOP vm2"; STOP2=$(up); mark "LAB_WL_STOP seen vm2 serve"; sleep 1; }
x1_post() {
  ok=$(tr -d '\r' < /tmp/vm1.log | sed -n 's/^FETCH ok=\([0-9]*\).*/\1/p' | head -1)
  fl=$(tr -d '\r' < /tmp/vm1.log | sed -n 's/^FETCH ok=[0-9]* failed=\([0-9]*\).*/\1/p' | head -1)
  sv=$(tr -d '\r' < /tmp/vm2.log | sed -n 's/^SERVE responses_200=\([0-9]*\).*/\1/p' | head -1)
  SCEN_JSON=$(printf '"cross":{"server":"vm2","server_ip":"10.0.0.12","server_cmd":"httpd -f -vv -p 80 -h /www (busybox; /www/f = %s bytes of zeros)","client":"vm1","client_ip":"10.0.0.11","client_cmd":"while (8 s): wget -q -O /dev/null http://10.0.0.12/f (busybox)","url":"http://10.0.0.12/f","file_bytes":%s,' $((X1_KB * 1024)) $((X1_KB * 1024))
    printf '"requests_completed":%s,"requests_failed":%s,"server_responses_200":%s,"go_sent_l1_uptime_s":%s,"fetch_wl_stop_seen_l1_uptime_s":%s,"serve_wl_stop_seen_l1_uptime_s":%s,' ${ok:-null} ${fl:-null} ${sv:-null} $GO_TC $STOP1 $STOP2
    printf '"path":"vm1 virtio-net -> vhost-<vm1 pid> -> tap1 -> br0 (L1) -> tap2 -> vhost-<vm2 pid> -> vm2 virtio-net, and back",'
    printf '"guest_console":{"vm1":[%s],"vm2":[%s]}},' "$(console_json vm1)" "$(console_json vm2)"); }
kill_vms() {
  for n in $VMS; do eval "p=\$${n}_pid c=\$${n}_cat"; kill $p 2>/dev/null; wait $p 2>/dev/null; kill $c 2>/dev/null; done
  VMS=""
}

for s in $(echo $SCEN | tr ',' ' '); do
  log "=== scenario $s ==="
  case $s in
    s1_idle)   launch_vm vm1 idle 2 - /dev/vda 1; record $s "one VM (2 vCPU) idle, guest sleeps" ;;
    s2_cpu)    launch_vm vm1 cpu  2 - /dev/vda 1; record $s "one VM (2 vCPU), md5sum /dev/zero on every vCPU" ;;
    s3_disk)   launch_vm vm1 disk 2 - /dev/vda 1; record $s "one VM (2 vCPU), dd 64k O_DIRECT write+read loop on virtio-blk" ;;
    s4_net)    launch_vm vm1 net  2 - /dev/vda 1; record $s "one VM (2 vCPU), TCP stream L2->L1 (dd|nc) over tap+bridge, vhost-net" ;;
    s5_overcommit) launch_vm vm1 cpu 1 1 /dev/vda 1; launch_vm vm2 cpu 1 1 /dev/vdb 2
               record $s "two 1-vCPU VMs, whole qemu processes pinned (taskset -c 1) to L1 CPU1, both md5sum busy" ;;
    s6_mixed)  launch_vm vm1 cpu 1 - /dev/vda 1; launch_vm vm2 disk 1 - /dev/vdb 2; launch_vm vm3 net 1 - /dev/vdc 3
               record $s "three 1-vCPU VMs: vm1 cpu, vm2 disk, vm3 net" ;;
    s7_alt)    launch_vm vm1 alt 1 - /dev/vda 1; record $s "one 1-vCPU VM, two guest processes alternating via FIFO token" ;;
    s6_mixed_lttng)  # scenario 6 recorded with LTTng (kernel tracer, lttng-modules built by build_lttng.sh)
               launch_vm vm1 cpu 1 - /dev/vda 1; launch_vm vm2 disk 1 - /dev/vdb 2; launch_vm vm3 net 1 - /dev/vdc 3
               record_lttng $s "three 1-vCPU VMs: vm1 cpu, vm2 disk, vm3 net (LTTng kernel trace)" ;;
    s3_disk_lttng|s5_overcommit_lttng)  # smaller LTTng recordings for development: no kvm_mmu_* events
               LTTNG_EVENTS='kvm_x86_*,kvm_userspace_exit,kvm_set_irq,kvm_msi_set_irq,kvm_ioapic_set_irq,kvm_mmio,kvm_fpu,sched_*,irq_*,block_*,net_*,hrtimer_*,timer_hrtimer_*'
               if [ $s = s3_disk_lttng ]; then launch_vm vm1 disk 2 - /dev/vda 1; d="one VM (2 vCPU), dd 64k O_DIRECT write+read loop on virtio-blk (LTTng kernel trace)"
               else launch_vm vm1 cpu 1 1 /dev/vda 1; launch_vm vm2 cpu 1 1 /dev/vdb 2; d="two 1-vCPU VMs pinned to L1 CPU1, both md5sum busy (LTTng kernel trace)"; fi
               record_lttng $s "$d" ;;
    lttng_dbg) mkdir -p /var/run /var/lib /root /share/out/lttng_dbg; export HOME=/root
               lttng-sessiond -vvv --verbose-consumer > /share/out/lttng_dbg/sessiond.log 2>&1 &
               sleep 12; insmod /lib/modules/$(uname -r)/updates/lttng/lttng-probe-kvm-x86.ko > /share/out/lttng_dbg/insmod.txt 2>&1
               dmesg | tail -30 >> /share/out/lttng_dbg/insmod.txt; lsmod > /share/out/lttng_dbg/lsmod.txt; ls -la /var/run/lttng >> /share/out/lttng_dbg/lsmod.txt 2>&1; sync ;;
    diag_ctf)  # record small perf subsets to find which event breaks `perf data convert --to-ctf`
               launch_vm vm1 disk 1 - /dev/vda 1; wait_ready; echo "go 200" > /tmp/vm1.in; sleep 2
               mkdir -p /tmp/out/diag_ctf
               for g in 'kvm:kvm_entry' 'kvm:kvm_exit' 'kvm:kvm_emulate_insn' 'kvm:kvm_eoi' 'kvm:kvm_inj_virq' 'kvm:kvm_apic*' 'kvm:kvm_msr' 'kvm:kvm_hv_timer_state' 'kvm:kvm_pv_*' 'kvm:kvm_set_irq' 'kvm:kvm_pic_set_irq' 'kvm:kvm_ioapic_set_irq' 'kvm:kvm_msi_set_irq' 'kvm:kvm_fpu' 'kvm:kvm_vcpu_wakeup' 'kvm:kvm_wait_lapic_expire' 'kvm:kvm_userspace_exit' 'kvm:kvm_pio' 'sched:*' 'irq:*' 'block:*' 'net:*' 'timer:hrtimer_*'; do
                 f=$(echo "$g" | tr ':*' '__'); perf record -q -a -k mono -e "$g" -o /tmp/out/diag_ctf/$f.data -- sleep 3 >/dev/null 2>&1; log "diag $g done"
               done
               mkdir -p /share/out/diag_ctf; cp -a /tmp/out/diag_ctf/. /share/out/diag_ctf/ ;;
    m1_memory) # host page events; L1's THP off so that the host backs guest RAM page by page (4 KiB)
               echo never > /sys/kernel/mm/transparent_hugepage/enabled; echo never > /sys/kernel/mm/transparent_hugepage/defrag
               TOUCH_MB=${TOUCH_MB:-128}; PAGE_EV="kmem:mm_page_alloc kmem:mm_page_free kmem:mm_page_free_batched"
               KSM_TP=false; [ -d $T/events/ksm ] && KSM_TP=true
               log "m1: ksm tracepoints: $KSM_TP ($(ls $T/events | tr '\n' ' '))"
               TC_EV="$TC_EV -e kmem:mm_page_alloc -e kmem:mm_page_free -e kmem:mm_page_free_batched"
               [ $KSM_TP = true ] && { TC_EV="$TC_EV -e ksm"; PAGE_EV="$PAGE_EV ksm:*"; }
               launch_vm vm1 touch 1 - /dev/vda 1 512 "touch_mb=$TOUCH_MB"
               vm1_json='"role":"touches memory once",'
               PRE_REC=m1_pre POST_REC=m1_post
               record_tc $s "one VM (1 vCPU, 512 MiB) idle; 2 s after the start the guest writes ${TOUCH_MB} MiB once into a tmpfs file (fresh pages), then idles; host page events" m1_drive ;;
    p1_phases) launch_vm vm1 cpu 1 - /dev/vda 1; vm1_wl="cpu then disk"
               vm1_json='"workload_phases":["cpu 8 s","disk 8 s"],'
               PRE_REC= POST_REC=p1_post
               record_tc $s "one VM (1 vCPU): 8 s of the cpu workload (md5sum /dev/zero), then 8 s of the disk workload (dd 64k O_DIRECT write+read loop on virtio-blk)" p1_drive ;;
    x1_cross)  X1_KB=${X1_KB:-1024}
               launch_vm vm1 fetch 1 - /dev/vda 1 256 "peer=10.0.0.12"
               launch_vm vm2 serve 1 - /dev/vdb 2 256 "file_kb=$X1_KB"
               vm1_json='"role":"client: fetches http://10.0.0.12/f again and again (busybox wget)",'
               vm2_json='"role":"server: busybox httpd on port 80 serving /www/f",'
               PRE_REC= POST_REC=x1_post
               record_tc $s "two 1-vCPU VMs on br0: vm2 serves a ${X1_KB} KiB file over HTTP (busybox httpd), vm1 fetches it again and again (busybox wget) for 8 s" x1_drive ;;
    shell)     sh ;;
  esac
  kill_vms
done
log "all scenarios done"
