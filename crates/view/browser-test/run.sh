#!/usr/bin/env bash
# Browser test of `virtflow view`: builds the release binary and the synthetic model's
# example, installs the pinned Playwright driver (no browser download: it drives Debian's
# chromium), runs test.mjs on the built-in demo trace and on the synthetic story.
# Screenshots land in test-artifacts/ at the repository root.
# Exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
    echo "browser test: $chromium is missing (apt-get install chromium)" >&2
    exit 1
fi
command -v node >/dev/null || { echo "browser test: node is missing (apt-get install nodejs npm)" >&2; exit 1; }

(cd "$repo" && cargo build --release -p virtflow && cargo build --release -p virtflow-view --example synthetic_model)
target="${CARGO_TARGET_DIR:-$repo/target}"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
export VIRTFLOW="$target/release/virtflow"
export SYNTHETIC_MODEL="$target/release/examples/synthetic_model"
export ARTIFACTS="${ARTIFACTS:-$repo/test-artifacts}"
export CHROMIUM="$chromium"
cd "$here" && node test.mjs
