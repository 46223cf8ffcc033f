"""Reads a `virtflow export --format perfetto` file with Perfetto's own published protos (the
`perfetto` Python package), independently of the project's proto subset, and checks it against
the analysis it came from (`virtflow analyze --json --intervals` of the same trace):

- one process track per VM, carrying the VM's pid, and as labels its guest name and UUID when
  the analysis found them (`guest=…`, `uuid=…`);
- one thread track per vCPU, carrying the VM's pid and the vCPU's tid;
- on each vCPU track, one slice per state interval, with the same start and end, in order;
- counter tracks exist and carry values;
- flows (wake-ups and messages between threads): every flow id starts once (`flow_ids`) and
  ends once (`terminating_flow_ids`), on instants of two different declared tracks, never
  ending before it starts; at least one when MIN_FLOWS says so;
- each VM's `steal (vCPUs)` counter and each host's `runnable vCPUs` are the analysis's series
  (per bucket, divided by the bucket's width), its `memory held` the running sum of what its
  threads allocated and freed, sampled at each bucket's end;
- phases: slices on the VM's process track, the analysis's phases when it has them.

Usage: check.py EXPORT.pftrace MODEL.json [LABEL,…] [MIN_FLOWS]

LABEL,…: labels that some process track must carry, known independently of the analysis (from
the command line given to the VMM). MIN_FLOWS: how many flows the export must hold at least.
"""
import json
import sys
from collections import defaultdict

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def check_series(model, names, counter_samples, process_names, slices, failures):
    """The analyses' counters and phase slices against the model; returns what was compared."""
    compared = 0
    hosts = {h["name"]: h for h in model["hosts"]}
    for host in model["hosts"]:
        b = host.get("buckets")
        runnable = host.get("overcommit", {}).get("runnable", [])
        if not b or not runnable:
            continue
        want = [(b["start_ns"] + i * b["step_ns"], v / b["step_ns"]) for i, v in enumerate(runnable)]
        got = counter_samples.get(f"{host['name']} runnable vCPUs")
        if got is None or len(got) != len(want) or not all(g[0] == w[0] and close(g[1], w[1]) for g, w in zip(got, want)):
            failures.append(f"host {host['name']}: runnable vCPUs counter differs from the analysis's series")
        compared += len(want)
    for vm in model["vms"]:
        host = hosts.get(vm["host"], {})
        b = host.get("buckets")
        if not b:
            continue
        start, step = b["start_ns"], b["step_ns"]
        steal = vm.get("overcommit", {}).get("steal", [])
        if steal:
            want = [(start + i * step, v / step) for i, v in enumerate(steal)]
            got = counter_samples.get(f"{vm['name']} steal (vCPUs)")
            if got is None or len(got) != len(want) or not all(g[0] == w[0] and close(g[1], w[1]) for g, w in zip(got, want)):
                failures.append(f"VM {vm['name']}: steal counter differs from the analysis's series")
            compared += len(want)
        mem = vm.get("memory", {})
        allocated, freed = mem.get("allocated", []), mem.get("freed", [])
        if host.get("memory", {}).get("traced") and (allocated or freed):
            held, want = 0, [(start, 0.0)]
            for i in range(max(len(allocated), len(freed))):
                held += (allocated[i] if i < len(allocated) else 0) - (freed[i] if i < len(freed) else 0)
                want.append((start + (i + 1) * step, float(held)))
            got = counter_samples.get(f"{vm['name']} memory held")
            if got is None or got != want:
                failures.append(f"VM {vm['name']}: memory held counter differs from the analysis's ledger")
            compared += len(want)
        phases = [(p["start"], p["end"], p["name"]) for p in vm.get("phases", [])]
        got = slices.get(process_names.get(vm["name"]), [])
        if phases and got != phases:
            failures.append(f"VM {vm['name']}: phase slices {got[:3]}… differ from its phases {phases[:3]}…")
        compared += len(phases)
    return compared


def main(export_path, model_path, expected_labels="", min_flows="0"):
    trace = pb.Trace()
    with open(export_path, "rb") as f:
        trace.ParseFromString(f.read())
    model = json.load(open(model_path))

    process_tracks = {}  # uuid -> pid
    process_labels = {}  # pid -> [label]
    thread_tracks = {}  # uuid -> (pid, tid)
    counter_tracks = set()
    track_names = {}  # uuid -> name
    slices = defaultdict(list)  # uuid -> [(begin, end, name)]
    open_slice = {}
    counter_values = 0
    counter_samples = defaultdict(list)  # counter track name -> [(ts, value)]
    flow_starts = defaultdict(list)  # id -> [(uuid, ts)]
    flow_ends = defaultdict(list)
    declared = set()
    # Timestamps and interned data are per sequence; the export uses absolute timestamps.
    for packet in trace.packet:
        if packet.HasField("track_descriptor"):
            td = packet.track_descriptor
            declared.add(td.uuid)
            track_names[td.uuid] = td.name
            if td.HasField("thread"):
                thread_tracks[td.uuid] = (td.thread.pid, td.thread.tid)
            elif td.HasField("process"):
                process_tracks[td.uuid] = td.process.pid
                process_labels[td.process.pid] = list(td.process.process_labels)
            elif td.HasField("counter"):
                counter_tracks.add(td.uuid)
        if packet.HasField("track_event"):
            ev = packet.track_event
            uuid = ev.track_uuid
            if ev.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
                assert uuid not in open_slice, f"nested slice on track {uuid} at {packet.timestamp}"
                open_slice[uuid] = (packet.timestamp, ev.name)
            elif ev.type == pb.TrackEvent.TYPE_SLICE_END:
                begin, name = open_slice.pop(uuid)
                slices[uuid].append((begin, packet.timestamp, name))
            elif ev.type == pb.TrackEvent.TYPE_COUNTER:
                assert uuid in counter_tracks, f"counter value on undeclared track {uuid}"
                counter_values += 1
                counter_samples[track_names[uuid]].append((packet.timestamp, ev.double_counter_value))
            for fid in ev.flow_ids:
                flow_starts[fid].append((uuid, packet.timestamp, ev.type))
            for fid in ev.terminating_flow_ids:
                flow_ends[fid].append((uuid, packet.timestamp, ev.type))
    assert not open_slice, f"slices never ended: {open_slice}"

    failures = []
    vm_pids = sorted(vm["pid"] for vm in model["vms"])
    if sorted(process_tracks.values()) != vm_pids:
        failures.append(f"process tracks {sorted(process_tracks.values())} != VMs {vm_pids}")
    labelled = 0
    for vm in model["vms"]:
        want = [f"{k}={vm[key]}" for k, key in (("guest", "guest_name"), ("uuid", "uuid")) if vm.get(key)]
        got = process_labels.get(vm["pid"], [])
        if got != want:
            failures.append(f"VM {vm['pid']}: process labels {got}, analysis says {want}")
        labelled += bool(want)
    all_labels = {l for ls in process_labels.values() for l in ls}
    for label in filter(None, expected_labels.split(",")):
        if label not in all_labels:
            failures.append(f"no process track labelled {label!r} (labels: {sorted(all_labels)})")
    by_tid = {tid: uuid for uuid, (pid, tid) in thread_tracks.items()}
    checked = 0
    for vm in model["vms"]:
        for vcpu in vm["vcpus"]:
            uuid = by_tid.get(vcpu["tid"])
            if uuid is None:
                failures.append(f"no thread track for vCPU tid {vcpu['tid']}")
                continue
            if thread_tracks[uuid][0] != vm["pid"]:
                failures.append(f"vCPU {vcpu['tid']} track has pid {thread_tracks[uuid][0]}, VM is {vm['pid']}")
            want = [(i["start"], i["end"]) for i in vcpu.get("intervals", [])]
            got = [(b, e) for b, e, _ in slices[uuid]]
            if want != got:
                first = next((k for k, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
                failures.append(
                    f"vCPU {vcpu['tid']}: {len(got)} slices vs {len(want)} intervals, first difference at #{first}"
                )
            checked += len(want)
    if not counter_tracks or counter_values == 0:
        failures.append("no counter track or no counter value")
    if checked == 0:
        failures.append("the model has no intervals to compare")
    bad_flows = []
    for fid in set(flow_starts) | set(flow_ends):
        starts, ends = flow_starts.get(fid, []), flow_ends.get(fid, [])
        if len(starts) != 1 or len(ends) != 1:
            bad_flows.append(f"flow {fid}: {len(starts)} starts, {len(ends)} ends")
            continue
        (su, st, sk), (eu, et, ek) = starts[0], ends[0]
        if su not in declared or eu not in declared or su == eu or et < st:
            bad_flows.append(f"flow {fid}: from track {su} at {st} to track {eu} at {et}")
        if sk != pb.TrackEvent.TYPE_INSTANT or ek != pb.TrackEvent.TYPE_INSTANT:
            bad_flows.append(f"flow {fid}: not on instants")
    failures.extend(bad_flows[:5])
    if len(flow_starts) < int(min_flows or 0):
        failures.append(f"{len(flow_starts)} flows, expected at least {min_flows}")
    process_names = {name: uuid for uuid, name in track_names.items() if uuid in process_tracks}
    series_compared = check_series(model, track_names, counter_samples, process_names, slices, failures)
    for f in failures:
        print("perfetto check: FAIL:", f)
    print(
        f"perfetto check: {len(process_tracks)} process tracks, {len(thread_tracks)} thread tracks, "
        f"{sum(len(s) for s in slices.values())} slices ({checked} compared with the analysis), "
        f"{len(counter_tracks)} counter tracks, {counter_values} counter values, "
        f"{labelled} VMs with guest labels, {len(flow_starts)} flows, "
        f"{series_compared} series values and phases compared with the analysis"
    )
    print(f"{0 if failures else 1} passed, {len(failures) and 1} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
