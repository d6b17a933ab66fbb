#!/usr/bin/env bash
# The main job, end to end: an embedded registry, a real program from
# Debian's packages (python3 importing numpy, pandas and scipy) as an
# overlaybd image, its start recorded in a warm-up and the trace attached to
# the image, then cold starts without and with prefetch and a warm start
# through a 20 ms, 100 Mbit/s link, and the report: a table here, HTML in
# out/demo/report.html, results in out/demo/results.json. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

dejavu=bin/dejavu
out=out/demo
runs=${RUNS:-3}
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ] || [ ! -e /dev/fuse ]; then
	echo "demo: needs root and /dev/fuse (it mounts images through FUSE and a loop device)" >&2
	exit 1
fi

step "the workload image: Debian bookworm, python3 with numpy, pandas, scipy (built once, cached in out/bench)"
WORKLOADS=py scripts/bench-image.sh

step "start the embedded registry"
start_registry
echo "registry at $addr"
ref="$addr/py:demo"

step "push the image (overlaybd, zstd) and look at it"
"$dejavu" image copy "oci:out/bench/image:py-zstd" "$ref"
"$dejavu" image inspect "$ref" | sed -n '1,12p'

step "staging: record what the start reads (two warm-up runs, each from an empty cache)"
mkdir -p "$out"
"$dejavu" trace record "$ref" --runs 2 --workload py --force --out "$out/py.djv" --state-dir "$work/state"
"$dejavu" trace inspect "$out/py.djv" | sed -n '1,8p'

step "CI: attach the trace to the image as an OCI referrer (the image digest does not change)"
"$dejavu" trace attach "$ref" "$out/py.djv"
"$dejavu" trace ls "$ref"

step "deploy: $runs cold starts without prefetch (lazy), with prefetch, and warm, at 20 ms and 100 Mbit/s"
"$dejavu" bench "$ref" --workload py --modes lazy,prefetch,warm --runs "$runs" --rtt 20ms --bandwidth 100Mbit --force \
	--out "$out/results.json" >"$work/table.txt"

step "the report"
cat "$work/table.txt"
"$dejavu" report "$out/results.json" -o html --force --out "$out/report.html"
echo
echo "results: $out/results.json"
echo "report:  $out/report.html (one file, opens offline)"
