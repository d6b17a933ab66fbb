# shellcheck shell=bash
# Sourced by the demo and bench scripts: a scratch directory ($work) removed
# on exit, and the embedded registry started in it.

work=$(mktemp -d -t dejavu-XXXXXX)
regpid=""
cleanup() {
	[ -n "$regpid" ] && kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# start_registry starts "bin/dejavu registry serve" on a free loopback port
# with its data under $work and sets addr to its host:port; it stops when
# the script exits.
start_registry() {
	bin/dejavu registry serve --addr 127.0.0.1:0 --dir "$work/registry" >"$work/registry.log" 2>&1 &
	regpid=$!
	addr=""
	for _ in $(seq 100); do
		addr=$(sed -n 's/^serving registry on \([^ ]*\).*/\1/p' "$work/registry.log")
		[ -n "$addr" ] && return 0
		sleep 0.1
	done
	cat "$work/registry.log" >&2
	echo "the registry did not start" >&2
	exit 1
}

# push_traced IMAGE REF TRACE [WORKLOAD [READY]] pushes an OCI layout image
# to REF, records its start (two warm-up runs, readiness probe READY, default
# exit) as workload WORKLOAD (default py) into TRACE and attaches the trace
# to it.
push_traced() {
	local workload=${4:-py} ready=${5:-exit}
	bin/dejavu image copy "$1" "$2" >/dev/null
	echo "== record the start of $workload (2 warm-ups) and attach the trace"
	bin/dejavu trace record "$2" --runs 2 --workload "$workload" --ready "$ready" --force --out "$3" --state-dir "$work/state"
	bin/dejavu trace attach "$2" "$3"
}
