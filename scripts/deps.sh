#!/usr/bin/env bash
# Installs what dejavu's build, tests and demo need, when it is missing:
# e2fsprogs (mke2fs, debugfs, e2fsck), util-linux (losetup, mount), kmod,
# containerd and runc,
# CA certificates, and the Go modules. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
need=()
command -v mke2fs >/dev/null 2>&1 || [ -x /sbin/mke2fs ] || [ -x /usr/sbin/mke2fs ] || need+=(e2fsprogs)
command -v debugfs >/dev/null 2>&1 || [ -x /sbin/debugfs ] || [ -x /usr/sbin/debugfs ] || need+=(e2fsprogs)
command -v losetup >/dev/null 2>&1 || [ -x /sbin/losetup ] || [ -x /usr/sbin/losetup ] || need+=(mount)
command -v mount >/dev/null 2>&1 || [ -x /bin/mount ] || need+=(mount)
command -v modprobe >/dev/null 2>&1 || [ -x /sbin/modprobe ] || [ -x /usr/sbin/modprobe ] || need+=(kmod)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
# A static busybox makes the small root file systems that tests start programs in.
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
# containerd and runc run containers on the dejavu snapshotter in its tests.
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
# Headless Chromium renders the HTML report in its test.
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
	# Unique package names, in order.
	pkgs=$(printf '%s\n' "${need[@]}" | awk '!seen[$0]++' | tr '\n' ' ')
	echo "deps: installing $pkgs"
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo="sudo"
		else
			echo "deps: need root (or sudo) to install: $pkgs" >&2
			exit 1
		fi
	fi
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs
fi

# Loop devices: load the module when the control device is missing.
if [ ! -e /dev/loop-control ] && [ "$(id -u)" -eq 0 ]; then
	modprobe loop 2>/dev/null || echo "deps: could not load the loop module; tests that mount will say so" >&2
fi

"$GO" mod download

# The distribution registry, pinned, for integration tests (it has no
# referrers API, which the tests need to exercise too).
registry_version=v3.1.2
if [ ! -x out/tools/bin/registry ] || [ "$(cat out/tools/registry.version 2>/dev/null)" != "$registry_version" ]; then
	echo "deps: installing the distribution registry $registry_version"
	mkdir -p out/tools/bin
	GOBIN="$PWD/out/tools/bin" GOFLAGS=-mod=mod "$GO" install "github.com/distribution/distribution/v3/cmd/registry@$registry_version"
	echo "$registry_version" >out/tools/registry.version
fi

# oras, pinned, so a test can show that other tools discover dejavu's traces.
oras_version=v1.3.6
if [ ! -x out/tools/bin/oras ] || [ "$(cat out/tools/oras.version 2>/dev/null)" != "$oras_version" ]; then
	echo "deps: installing oras $oras_version"
	mkdir -p out/tools/bin
	GOBIN="$PWD/out/tools/bin" GOFLAGS=-mod=mod "$GO" install "oras.land/oras/cmd/oras@$oras_version"
	echo "$oras_version" >out/tools/oras.version
fi
