#!/usr/bin/env bash
# Two releases of the py workload that differ only in their top layer, as a
# new build of an application on the same base does: the four build steps
# of bench-layers.sh, then /app/main.py (release 1, then a changed release
# 2). Both are converted layer by layer (the second conversion converts
# only its top layer: the conversion cache has the rest) and pushed to the
# embedded registry. Release 1's start is recorded and its trace attached;
# "dejavu trace attach REL2 --from REL1" carries it to release 2, which
# then starts lazily and with the carried trace (auto), alternating; then
# release 2's own start is recorded and it starts lazily and with that
# trace. Results in out/bench/release/{carried,own}.json and the table in
# out/bench/release/release.md. RUNS (default 5), PROFILE (cross-region).
# Needs root and the steps of bench-layers.sh (make bench-image).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

dejavu=bin/dejavu
out=out/bench
steps=$out/steps
rel=$out/release
runs=${RUNS:-5}
profile=${PROFILE:-cross-region}
if ! [ -e "$steps/clean.done" ]; then
	echo "bench-release: no build steps in $steps; run make bench-image" >&2
	exit 1
fi
mkdir -p "$rel"
cmd=(--cmd python3 --cmd /app/main.py)
for v in 1 2; do
	if ! [ -e "$steps/app-$v.done" ]; then
		rm -rf "${steps:?}/app-$v"
		cp -a "$steps/clean" "$steps/app-$v"
		mkdir -p "$steps/app-$v/app"
		printf 'import numpy, pandas, scipy.stats\nprint("release %s")\n' "$v" >"$steps/app-$v/app/main.py"
		touch "$steps/app-$v.done"
	fi
	"$dejavu" image layers "oci:$rel/layout:rel-$v" "$steps/base" "$steps/python" "$steps/sci" "$steps/clean" "$steps/app-$v" "${cmd[@]}" >/dev/null
	echo "== convert release $v, layer by layer"
	t0=$(date +%s%N)
	"$dejavu" image convert "oci:$rel/layout:rel-$v" "oci:$rel/layout:rel-$v-obd" --compression zstd --cache-dir "$rel/convert-cache"
	echo "   converted in $((($(date +%s%N) - t0) / 1000000)) ms"
done

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
start_registry
for v in 1 2; do
	"$dejavu" image copy "oci:$rel/layout:rel-$v-obd" "$addr/py:rel-$v" >/dev/null
done
echo "== record release 1 and attach its trace; carry it to release 2"
"$dejavu" trace record "$addr/py:rel-1" --runs 2 --workload py --force --out "$rel/rel-1.djv" --state-dir "$work/state"
"$dejavu" trace attach "$addr/py:rel-1" "$rel/rel-1.djv"
"$dejavu" trace attach "$addr/py:rel-2" --from "$addr/py:rel-1" --workload py
"$dejavu" trace ls "$addr/py:rel-2"
echo "== release 2 with the carried trace"
"$dejavu" bench "$addr/py:rel-2" --workload py --modes lazy,prefetch,warm --runs "$runs" --profile "$profile" --force --out "$rel/carried.json"
echo "== release 2 with its own trace"
"$dejavu" trace record "$addr/py:rel-2" --runs 2 --workload py --force --out "$rel/rel-2.djv" --state-dir "$work/state"
"$dejavu" bench "$addr/py:rel-2" --trace "$rel/rel-2.djv" --modes lazy,prefetch,warm --runs "$runs" --profile "$profile" --force --out "$rel/own.json"
"$dejavu" report "$rel/carried.json" "$rel/own.json" -o markdown --force --out "$rel/release.md"
cat "$rel/release.md"
