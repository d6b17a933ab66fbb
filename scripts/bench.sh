#!/usr/bin/env bash
# The startup comparison: the workload image in the embedded registry, a
# trace recorded and attached, then full, lazy, prefetch, fifo and warm
# starts through a 20 ms, 100 Mbit/s link; results in out/bench/results.json
# (COMPRESSION=lz4: the lz4 image, results in results-lz4.json; FORM=layered:
# the layer-preserving conversion of the image as users build it, one layer
# per build step, results in results-layered.json).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

dejavu=bin/dejavu
out=out/bench
runs=${RUNS:-5}
comp=${COMPRESSION:-zstd}
suffix=""
[ "$comp" = zstd ] || suffix="-$comp"
image=py-$comp
case ${FORM:-flat} in
flat) ;;
layered)
	[ "$comp" = zstd ] || { echo "bench: FORM=layered is built with zstd only" >&2; exit 1; }
	image=py-layered-zstd suffix=-layered
	;;
*)
	echo "bench: FORM=$FORM: want flat or layered" >&2
	exit 1
	;;
esac
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

start_registry
ref="$addr/py:bench"

push_traced "oci:$out/image:$image" "$ref" "$out/py$suffix.djv"
echo "== a trace of another workload of the same image, for the mismatch check"
"$dejavu" trace record "$ref" --workload other --force --out "$out/other$suffix.djv" --state-dir "$work/state" -- python3 -c "import json, csv"

echo "== bench: $runs runs per mode, 20 ms RTT, 100 Mbit/s"
"$dejavu" bench "$ref" --workload py --modes full,lazy,prefetch,fifo,warm --runs "$runs" \
	--rtt 20ms --bandwidth 100Mbit --force --out "$out/results$suffix.json"
echo "== prefetch with the other workload's trace, against lazy"
"$dejavu" bench "$ref" --trace "$out/other$suffix.djv" --modes lazy,prefetch --runs "$runs" \
	--rtt 20ms --bandwidth 100Mbit --force --out "$out/results-other-trace$suffix.json"
