#!/usr/bin/env bash
# The main job, as far as it exists: an embedded registry, a real overlaybd
# image in it, one built from a directory, both inspected and checked.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

dejavu=bin/dejavu
shared=../shared/testdata/overlaybd
work=$(mktemp -d -t dejavu-demo-XXXXXX)
regpid=""
cleanup() {
	[ -n "$regpid" ] && kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "start the embedded registry"
"$dejavu" registry serve --addr 127.0.0.1:0 --dir "$work/registry" >"$work/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 100); do
	addr=$(sed -n 's/^serving registry on \([^ ]*\).*/\1/p' "$work/registry.log")
	[ -n "$addr" ] && break
	sleep 0.1
done
[ -n "${addr:-}" ] || { cat "$work/registry.log"; echo "registry did not start" >&2; exit 1; }
echo "registry at $addr"

step "build an overlaybd image from a directory"
app="$work/app"
mkdir -p "$app/bin" "$app/etc" "$app/srv/www"
printf '#!/bin/sh\necho "hello from a dejavu image"\n' >"$app/bin/hello.sh"
chmod 755 "$app/bin/hello.sh"
echo "demo-host" >"$app/etc/hostname"
for i in $(seq 1 200); do head -c $((i * 97)) /dev/urandom >"$app/srv/www/page$i.bin"; done
ln -s ../srv/www/page1.bin "$app/etc/first-page"
"$dejavu" image build "$app" "$addr/demo:latest" --cmd /bin/hello.sh

step "inspect it"
"$dejavu" image inspect "$addr/demo:latest"

step "write its device as a raw disk image and list it with debugfs"
"$dejavu" image raw "$addr/demo:latest" "$work/demo.raw"
debugfs -R 'ls -l /bin' "$work/demo.raw" 2>/dev/null
debugfs -R 'cat /bin/hello.sh' "$work/demo.raw" 2>/dev/null

if [ -d "$shared/hello-world-oci-layout" ]; then
	step "copy a real overlaybd image (converted by the overlaybd tools) into the registry, unchanged"
	"$dejavu" image copy "oci:$shared/hello-world-oci-layout:amd64-converted" "$addr/hello:overlaybd"
	"$dejavu" image inspect "$addr/hello:overlaybd"

	step "run its /hello, read out of the merged overlaybd device"
	"$dejavu" image raw "$addr/hello:overlaybd" "$work/hello.raw"
	debugfs -R "dump /hello $work/hello" "$work/hello.raw" 2>/dev/null
	chmod +x "$work/hello"
	"$work/hello" | sed -n "1,3p"

	if [ "$(id -u)" -eq 0 ] && [ -e /dev/fuse ]; then
		step "run it lazily: mount from the registry (FUSE + loop), start /hello in its namespaces, time it"
		"$dejavu" run "$addr/hello:overlaybd" --cache "$work/cache" --state-dir "$work/state" | sed -n '/Hello/p'
		step "again, warm: every byte comes from the local cache, the registry is not asked"
		"$dejavu" run "$addr/hello:overlaybd" --cache "$work/cache" --state-dir "$work/state" | sed -n '/Hello/p'

		step "record what the start reads (two warm-ups, each from an empty cache), with the backstore and with eBPF"
		"$dejavu" trace record "$addr/hello:overlaybd" --runs 2 --workload hello -o "$work/hello.djv" --state-dir "$work/state" >/dev/null
		"$dejavu" trace record "$addr/hello:overlaybd" --recorder ebpf --workload hello-ebpf -o "$work/hello-ebpf.djv" --state-dir "$work/state" >/dev/null
		"$dejavu" trace inspect "$work/hello.djv" | sed -n '1,8p'

		step "attach the trace to the image as an OCI referrer (the image digest does not change), list it, pull it"
		"$dejavu" trace attach "$addr/hello:overlaybd" "$work/hello.djv"
		"$dejavu" trace attach "$addr/hello:overlaybd" "$work/hello-ebpf.djv" >/dev/null
		"$dejavu" trace ls "$addr/hello:overlaybd"
		"$dejavu" trace pull "$addr/hello:overlaybd" --workload hello -o "$work/pulled.djv" >/dev/null
		"$dejavu" trace export "$work/pulled.djv" --format overlaybd --image "$addr/hello:overlaybd" -o "$work/overlaybd.trace"
		echo "exported for overlaybd's recordTracePath: $(stat -c %s "$work/overlaybd.trace") bytes"
	fi

	if [ "$(id -u)" -eq 0 ]; then
		step "convert the ordinary Docker hello-world image into overlaybd"
		"$dejavu" image convert "oci:$shared/hello-world-oci-layout:amd64" "$addr/hello:converted"
		"$dejavu" image inspect "$addr/hello:converted" | sed -n '1,12p'
	fi
fi

cat <<'NEXT'

== still to come (next issues)
  - prefetch at cold start from the attached trace (dejavu mount/run --trace)
  - cold starts with and without prefetch side by side, and the startup latency report
NEXT
