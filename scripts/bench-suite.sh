#!/usr/bin/env bash
# The benchmark suite: every workload of scripts/workloads.sh pushed to the
# embedded registry, its start recorded (two warm-ups, its readiness probe)
# and the trace attached, then for each workload and link profile lazy,
# prefetch, fifo and warm starts alternating run by run, RUNS (default 5) of
# each. Results in out/bench/suite/NAME-PROFILE.json (+ .html, and the
# table as .txt). WORKLOADS="py web" and PROFILES="slow" pick a subset.
# Needs root and the images of make bench-image.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

dejavu=bin/dejavu
out=out/bench
suite=$out/suite
runs=${RUNS:-5}
modes=lazy,prefetch,fifo,warm
# shellcheck source=scripts/workloads.sh
. scripts/workloads.sh

profile_names=(cross-region slow same-region)

# profile_flags NAME sets flags to the dejavu bench flags of link profile
# NAME: cross-region (today's default), slow (close to overlaybd's published
# cross-region test) and same-region.
profile_flags() {
	case $1 in
	cross-region) flags=(--rtt 20ms --bandwidth 100Mbit) ;;
	slow) flags=(--rtt 50ms --bandwidth 25Mbit) ;;
	same-region) flags=(--rtt 2ms --bandwidth 1Gbit) ;;
	*)
		echo "unknown profile $1 (known: ${profile_names[*]})" >&2
		return 1
		;;
	esac
}

read -r -a names <<<"${WORKLOADS:-${workload_names[*]}}"
read -r -a profiles <<<"${PROFILES:-${profile_names[*]}}"
# Every name is checked before the first start, not after an hour of them.
for p in "${profiles[@]}"; do profile_flags "$p"; done
for name in "${names[@]}"; do
	workload "$name"
	if ! grep -q "\"org.opencontainers.image.ref.name\": *\"$name-zstd\"" "$out/image/index.json" 2>/dev/null; then
		echo "bench-suite: $out/image has no $name-zstd; run make bench-image" >&2
		exit 1
	fi
done
if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
	echo "bench-suite: RUNS=$runs is not a positive number" >&2
	exit 1
fi

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
mkdir -p "$suite"
start_registry
began=$SECONDS

for name in "${names[@]}"; do
	workload "$name"
	push_traced "oci:$out/image:$name-zstd" "$addr/$name:suite" "$suite/$name.djv" "$name" "$ready"
done

for name in "${names[@]}"; do
	workload "$name"
	for p in "${profiles[@]}"; do
		profile_flags "$p"
		echo "== bench $name, $p (${flags[*]}): $runs runs of $modes"
		t0=$SECONDS
		"$dejavu" bench "$addr/$name:suite" --workload "$name" --ready "$ready" \
			--modes "$modes" --runs "$runs" "${flags[@]}" \
			--force -o "$suite/$name-$p.json" | tee "$suite/$name-$p.txt"
		echo "   ($((SECONDS - t0)) s)"
	done
done
echo "bench-suite: done in $(((SECONDS - began) / 60)) min; results in $suite"
