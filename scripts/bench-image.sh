#!/usr/bin/env bash
# Builds the benchmark workload images once and keeps them in out/bench: for
# each workload of scripts/workloads.sh a Debian bookworm (minbase) rootfs
# with its packages and files (out/bench/rootfs-NAME; out/bench/rootfs for
# py), built into one OCI layout, out/bench/image, as tag NAME-zstd. py is
# also built with lz4 (py-lz4, overlaybd's default, for COMPRESSION=lz4 make
# bench). The .debs are kept in out/bench/debs, so a rebuilt rootfs does not
# fetch them again; a tag already in the layout is skipped. WORKLOADS="py cc"
# builds a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
# shellcheck source=scripts/workloads.sh
. scripts/workloads.sh

out=out/bench
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
read -r -a names <<<"${WORKLOADS:-${workload_names[*]}}"

# has_tag TAG: the layout already holds TAG.
has_tag() {
	grep -q "\"org.opencontainers.image.ref.name\": *\"$1\"" "$out/image/index.json" 2>/dev/null
}

# debootstrap_rootfs NAME: the workload's rootfs, debootstrapped unless done.
debootstrap_rootfs() {
	if [ -e "$rootfs/$built" ]; then
		return 0
	fi
	if ! command -v debootstrap >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
	fi
	rm -rf "$rootfs"
	mkdir -p "$out/debs"
	echo "bench-image: debootstrap bookworm for $1 with $packages"
	local log="$out/debootstrap-$1.log"
	# The whole log goes to a file; a line of progress per stage to the
	# terminal (a minute or two: one to two hundred packages).
	if ! debootstrap --variant=minbase --cache-dir="$PWD/$out/debs" --include="$packages" \
		bookworm "$rootfs" "$mirror" 2>&1 |
		tee "$log" |
		awk '/^I: Retrieving /{n++; if (n % 10 == 0) printf "  fetched %d packages\n", n; fflush()}
		     /^I: (Extracting|Unpacking|Configuring)/ && !seen[$2]++ {print "  " tolower($2) " packages"; fflush()}
		     /^E: /{print; fflush()}'; then
		echo "bench-image: debootstrap failed, see $log" >&2
		exit 1
	fi
	# Nothing of the package cache belongs in the image.
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb
}

# build_image NAME: the workload's tags that are missing.
build_image() {
	local comp args=()
	for comp in $comps; do
		has_tag "$1-$comp" || args=(x)
	done
	if [ ${#args[@]} -eq 0 ]; then
		echo "bench-image: $1 is already built"
		return 0
	fi
	debootstrap_rootfs "$1"
	if [ -n "$files" ]; then
		cp -a "scripts/workloads/$files/." "$rootfs/"
	fi
	args=()
	local a
	for a in "${cmd[@]}"; do args+=(--cmd "$a"); done
	for a in "${env[@]}"; do args+=(--env "$a"); done
	[ -z "$workdir" ] || args+=(--workdir "$workdir")
	for comp in $comps; do
		has_tag "$1-$comp" && continue
		echo "bench-image: building the overlaybd image $1-$comp"
		bin/dejavu image build "$rootfs" "oci:$out/image:$1-$comp" --compression "$comp" "${args[@]}"
	done
}

mkdir -p "$out"
for name in "${names[@]}"; do
	workload "$name"
	build_image "$name"
done
