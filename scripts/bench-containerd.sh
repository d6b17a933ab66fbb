#!/usr/bin/env bash
# The reference workload started through containerd (Debian's containerd and
# runc) on the dejavu snapshotter: lazy, prefetch and warm starts through a
# 20 ms, 100 Mbit/s link; results in out/bench/results-containerd.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

dejavu=bin/dejavu
out=out/bench
runs=${RUNS:-5}
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

start_registry
ref="$addr/py:bench"

push_traced "oci:$out/image:py-zstd" "$ref" "$out/py-containerd.djv"

echo "== bench through containerd: $runs runs per mode, 20 ms RTT, 100 Mbit/s"
"$dejavu" bench "$ref" --runtime containerd --workload py --modes lazy,prefetch,warm --runs "$runs" \
	--rtt 20ms --bandwidth 100Mbit --force --out "$out/results-containerd.json"
