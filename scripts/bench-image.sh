#!/usr/bin/env bash
# Builds the benchmark workload image once and keeps it in out/bench: Debian
# bookworm (minbase) with python3, numpy, pandas and scipy, whose start
# (importing them) reads on the order of fifty megabytes. Two layouts of
# the same tree: zstd (image:py-zstd, what make bench measures) and lz4
# (image:py-lz4, overlaybd's default, for COMPRESSION=lz4 make bench).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

out=out/bench
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if grep -q '"py-zstd"' "$out/image/index.json" 2>/dev/null && grep -q '"py-lz4"' "$out/image/index.json"; then
	echo "bench-image: $out/image is already built"
	exit 0
fi
if ! command -v debootstrap >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
fi
mkdir -p "$out"
if [ ! -x "$out/rootfs/usr/bin/python3" ]; then
	rm -rf "$out/rootfs"
	echo "bench-image: debootstrap bookworm with python3-numpy, python3-pandas, python3-scipy"
	# The whole log goes to a file; a line of progress per stage to the
	# terminal (a minute or two: about 150 packages to fetch and unpack).
	if ! debootstrap --variant=minbase --include=python3-numpy,python3-pandas,python3-scipy bookworm "$out/rootfs" "$mirror" 2>&1 |
		tee "$out/debootstrap.log" |
		awk '/^I: Retrieving /{n++; if (n % 10 == 0) printf "  fetched %d packages\n", n; fflush()}
		     /^I: (Extracting|Unpacking|Configuring)/ && !seen[$2]++ {print "  " tolower($2) " packages"; fflush()}
		     /^E: /{print; fflush()}'; then
		echo "bench-image: debootstrap failed, see $out/debootstrap.log" >&2
		exit 1
	fi
fi
for comp in zstd lz4; do
	echo "bench-image: building the overlaybd image ($comp)"
	bin/dejavu image build "$out/rootfs" "oci:$out/image:py-$comp" --compression "$comp" \
		--cmd python3 --cmd -c --cmd "import numpy, pandas, scipy.stats"
done
