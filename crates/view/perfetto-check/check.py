"""Reads a `virtflow export --format perfetto` file with Perfetto's own published protos (the
`perfetto` Python package), independently of the project's proto subset, and checks it against
the analysis it came from (`virtflow analyze --json --intervals` of the same trace):

- one process track per VM, carrying the VM's pid, and as labels its guest name and UUID when
  the analysis found them (`guest=…`, `uuid=…`);
- one thread track per vCPU, carrying the VM's pid and the vCPU's tid;
- on each vCPU track, one slice per state interval, with the same start and end, in order;
- counter tracks exist and carry values.

Usage: check.py EXPORT.pftrace MODEL.json [LABEL,…]

LABEL,…: labels that some process track must carry, known independently of the analysis (from
the command line given to the VMM).
"""
import json
import sys
from collections import defaultdict

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb


def main(export_path, model_path, expected_labels=""):
    trace = pb.Trace()
    with open(export_path, "rb") as f:
        trace.ParseFromString(f.read())
    model = json.load(open(model_path))

    process_tracks = {}  # uuid -> pid
    process_labels = {}  # pid -> [label]
    thread_tracks = {}  # uuid -> (pid, tid)
    counter_tracks = set()
    slices = defaultdict(list)  # uuid -> [(begin, end, name)]
    open_slice = {}
    counter_values = 0
    # Timestamps and interned data are per sequence; the export uses absolute timestamps.
    for packet in trace.packet:
        if packet.HasField("track_descriptor"):
            td = packet.track_descriptor
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
    for f in failures:
        print("perfetto check: FAIL:", f)
    print(
        f"perfetto check: {len(process_tracks)} process tracks, {len(thread_tracks)} thread tracks, "
        f"{sum(len(s) for s in slices.values())} slices ({checked} compared with the analysis), "
        f"{len(counter_tracks)} counter tracks, {counter_values} counter values, "
        f"{labelled} VMs with guest labels"
    )
    print(f"{0 if failures else 1} passed, {len(failures) and 1} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
