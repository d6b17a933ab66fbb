#!/usr/bin/env bash
# The benchmark suite: every workload of scripts/workloads.sh pushed to the
# embedded registry, its start recorded (two warm-ups, its readiness probe)
# and the trace attached, then for each workload and link profile lazy,
# prefetch, fifo, warm and local starts (local: the same ext4 from a local
# file, without dejavu) alternating run by run, RUNS (default 5) of each.
# Results in out/bench/suite/NAME-PROFILE.json (+ .html, and the table as
# .txt), and the suite's table of all of them in out/bench/suite/suite.md.
# WORKLOADS="py web" and PROFILES="slow" pick a subset.
# Needs root and the images of make bench-image.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

dejavu=bin/dejavu
out=out/bench
suite=$out/suite
runs=${RUNS:-5}
modes=${MODES:-lazy,prefetch,fifo,warm,local}
# shellcheck source=scripts/workloads.sh
. scripts/workloads.sh

# The link profiles of dejavu bench --profile.
profile_names=(cross-region slow same-region)

check_profile() {
	case " ${profile_names[*]} " in
	*" $1 "*) ;;
	*)
		echo "bench-suite: unknown profile $1 (known: ${profile_names[*]})" >&2
		return 1
		;;
	esac
}

read -r -a names <<<"${WORKLOADS:-${workload_names[*]}}"
read -r -a profiles <<<"${PROFILES:-${profile_names[*]}}"
# Every name is checked before the first start, not after an hour of them.
for p in "${profiles[@]}"; do check_profile "$p"; done
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
results=()

for name in "${names[@]}"; do
	workload "$name"
	push_traced "oci:$out/image:$name-zstd" "$addr/$name:suite" "$suite/$name.djv" "$name" "$ready"
done

for name in "${names[@]}"; do
	workload "$name"
	for p in "${profiles[@]}"; do
		echo "== bench $name, $p: $runs runs of $modes"
		t0=$SECONDS
		"$dejavu" bench "$addr/$name:suite" --workload "$name" --ready "$ready" \
			--modes "$modes" --runs "$runs" --profile "$p" \
			--force --out "$suite/$name-$p.json" | tee "$suite/$name-$p.txt"
		echo "   ($((SECONDS - t0)) s)"
		results+=("$suite/$name-$p.json")
	done
done
echo "== the suite"
"$dejavu" report "${results[@]}" -o markdown --force --out "$suite/suite.md"
cat "$suite/suite.md"
echo "bench-suite: done in $(((SECONDS - began) / 60)) min; results in $suite"
