#!/usr/bin/env bash
# Decodes virtflow's Perfetto export with Perfetto's own published protos (Python package
# `perfetto`) and checks tracks and slices against the analysis, on the built-in demo trace and
# on a real host trace. Exits non-zero on any failure.
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
    "$venv/bin/python" "$here/check.py" "$work/export.pftrace" "$work/model.json"
}
echo "perfetto check: built-in demo trace"
check
echo "perfetto check: real host trace kvm-lab/s3_disk"
check "$repo/../shared/traces/kvm-lab/s3_disk/trace.dat"
