#!/usr/bin/env bash
# Decodes virtflow's Perfetto export with Perfetto's own published protos (Python package
# `perfetto`) and checks tracks, slices, flows, counters and phases against the analysis, on
# the built-in demo trace, on a real host trace, and on a real trace with page events. Exits
# non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
(cd "$repo" && cargo build --release -p virtflow --quiet)
virtflow="$target/release/virtflow"
venv="$target/perfetto-check-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
check() {
    "$virtflow" export "$@" --format perfetto -o "$work/export.pftrace" 2>/dev/null
    "$virtflow" analyze "$@" --json --intervals > "$work/model.json"
    "$venv/bin/python" "$here/check.py" "$work/export.pftrace" "$work/model.json" "${labels:-}" "${min_flows:-0}"
}
echo "perfetto check: built-in demo trace"
# Its VMs' vCPUs are woken by their I/O and vhost threads: the export must hold those flows.
min_flows=100 check
echo "perfetto check: real host trace kvm-lab/s3_disk"
check "$repo/../shared/traces/kvm-lab/s3_disk/trace.dat"
# The same trace with the VMM command line `virtflow record` would have saved beside it (the
# VMM's pid from the lab's manifest; the name and UUID made up): the VM's labels.
lab="$repo/../shared/traces/kvm-lab/s3_disk"
mkdir -p "$work/named"
ln -s "$lab/trace.dat" "$work/named/trace.dat"
"$venv/bin/python" - "$lab/manifest.json" > "$work/named/trace.dat.vmm-cmdlines.json" <<'PY'
import json, sys
vm = json.load(open(sys.argv[1]))["vms"][0]
argv = ["qemu-system-x86_64", "-name", "guest=web-7,debug-threads=on",
        "-uuid", "6c5e0b62-3f1a-4c2e-9d0b-7a1f2e3d4c5b", "-enable-kvm"]
print(json.dumps([{"pid": vm["qemu_pid"], "argv": argv, "seen_at_ns": None}]))
PY
echo "perfetto check: the same trace, its VM named by its VMM's command line"
labels="guest=web-7,uuid=6c5e0b62-3f1a-4c2e-9d0b-7a1f2e3d4c5b" check "$work/named/trace.dat"
# A real recording with the host's page events: the memory counters against the ledger.
echo "perfetto check: real host trace with page events (tests/traces/m1_memory)"
zstd -q -d "$repo/tests/traces/m1_memory/trace.dat.zst" -o "$work/m1_memory.dat"
check "$work/m1_memory.dat"
