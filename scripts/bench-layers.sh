#!/usr/bin/env bash
# Builds the py workload as users build their images: an ordinary OCI image
# (gzip tar layers) with one layer per build step, as a Dockerfile would
# make it, tagged py-layers in out/bench/image:
#   1. the base system (Debian bookworm, minbase)
#   2. apt-get install python3
#   3. apt-get install python3-numpy python3-pandas python3-scipy
#   4. the apt caches and lists removed (whiteouts of what 2 and 3 left)
# Each step's tree is a copy of the one before (cp -a) in out/bench/steps,
# kept for the next build; dejavu image layers makes the layers from them.
# Then dejavu image convert makes its overlaybd form layer by layer,
# py-layered-zstd (FORM=layered make bench measures it).
# Sourced steps need root and the network to a Debian mirror (DEBIAN_MIRROR).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

out=out/bench
steps=$out/steps
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
tag=py-layers
has_tag() {
	grep -q "\"org.opencontainers.image.ref.name\": *\"$1\"" "$out/image/index.json" 2>/dev/null
}
# convert: the layer-preserving overlaybd conversion, py-layered-zstd.
convert() {
	has_tag py-layered-zstd && return 0
	echo "bench-layers: converting $tag layer by layer into py-layered-zstd"
	bin/dejavu image convert "oci:$out/image:$tag" "oci:$out/image:py-layered-zstd" --compression zstd --cache-dir "$out/convert-cache"
}
if has_tag "$tag"; then
	echo "bench-layers: $tag is already built"
	convert
	exit 0
fi
mkdir -p "$steps" "$out/debs"
if ! command -v debootstrap >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
fi

# in_chroot DIR CMD...: runs CMD in DIR with /proc mounted and the host's
# resolver, as a build step runs in its container.
in_chroot() {
	local dir=$1
	shift
	cp /etc/resolv.conf "$dir/etc/resolv.conf"
	mount -t proc proc "$dir/proc"
	local rc=0
	DEBIAN_FRONTEND=noninteractive chroot "$dir" "$@" || rc=$?
	umount "$dir/proc"
	return $rc
}

# step NAME PREV CMD...: the tree NAME, a copy of PREV changed by CMD,
# unless done.
step() {
	local name=$1 prev=$2
	shift 2
	[ -e "$steps/$name.done" ] && return 0
	echo "bench-layers: step $name"
	rm -rf "${steps:?}/$name"
	cp -a "$steps/$prev" "$steps/$name"
	"$@" "$steps/$name"
	touch "$steps/$name.done"
}

apt_install() {
	local dir=${*: -1}
	set -- "${@:1:$#-1}"
	in_chroot "$dir" sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $*" >"$steps/apt-$(basename "$dir").log" 2>&1
}
clean_apt() {
	rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb
}

if ! [ -e "$steps/base.done" ]; then
	echo "bench-layers: step base (debootstrap bookworm, minbase)"
	rm -rf "$steps/base"
	debootstrap --variant=minbase --cache-dir="$PWD/$out/debs" bookworm "$steps/base" "$mirror" >"$steps/debootstrap.log" 2>&1 ||
		{ echo "bench-layers: debootstrap failed, see $steps/debootstrap.log" >&2; exit 1; }
	rm -rf "$steps"/base/var/cache/apt/archives/*.deb
	touch "$steps/base.done"
fi
step python base apt_install python3
step sci python apt_install python3-numpy python3-pandas python3-scipy
step clean sci clean_apt
bin/dejavu image layers "oci:$out/image:$tag" "$steps/base" "$steps/python" "$steps/sci" "$steps/clean" \
	--cmd python3 --cmd -c --cmd "import numpy, pandas, scipy.stats"
convert
