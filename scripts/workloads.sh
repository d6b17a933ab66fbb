# shellcheck shell=bash disable=SC2034 # the variables are the interface, read by the scripts sourcing this
# Sourced by bench-image.sh and bench-suite.sh: the benchmark workloads, one
# entry each in workload() below, so that adding one is one case there plus
# its name in workload_names. Each is a Debian bookworm (minbase) rootfs with
# the entry's packages and files, built into out/bench/image as NAME-zstd.

# The workloads in the order the suite runs them.
workload_names=(py cc web jvm)

# workload NAME sets, for that workload:
#   packages   debootstrap --include list (comma separated)
#   built      a file under the rootfs whose presence says debootstrap finished
#   files      a directory of scripts/workloads whose tree is copied into the
#              rootfs (the program's own files), or empty
#   rootfs     its debootstrap directory
#   comps      the compressions built, each as tag NAME-COMP
#   ready      the readiness probe (dejavu bench --ready)
#   workdir    the working directory of the process, or empty
#   env        KEY=VALUE settings of the image config (array)
#   cmd        the command of the image config (array)
workload() {
	packages="" built="" files="" rootfs="out/bench/rootfs-$1" comps=zstd
	ready=exit workdir="" env=() cmd=()
	case $1 in
	py)
		# Importing the scientific stack: ~50 MiB read, a 3-4 s prefetching
		# start. Its rootfs and tags predate the suite and keep their names
		# (make bench, demo and bench-containerd use them).
		packages=python3-numpy,python3-pandas,python3-scipy
		built=usr/bin/python3 rootfs=out/bench/rootfs comps="zstd lz4"
		cmd=(python3 -c "import numpy, pandas, scipy.stats")
		;;
	cc)
		# A compiler run: gcc -O2 on a few hundred lines of C including a
		# dozen system headers, then linked: cc1, as, ld and the headers.
		packages=gcc,libc6-dev
		built=usr/bin/gcc files=cc workdir=/src
		cmd=(gcc -O2 -Wall -o /tmp/prog prog.c -lm -lpthread)
		;;
	web)
		# A web server answering an HTTP readiness probe: node with a small
		# http server; the port is an unusual one since the network is the
		# host's.
		packages=nodejs,ca-certificates
		built=usr/bin/node files=web workdir=/srv
		ready=http:http://127.0.0.1:18473/ env=(PORT=18473 NODE_ENV=production)
		cmd=(node server.js)
		;;
	jvm)
		# A JVM program: Rhino (Mozilla's JavaScript engine, in Java) running
		# a short script on openjdk-17-jre-headless: the JVM, the modules
		# image and the class loading of a jar.
		packages=rhino
		built=usr/bin/rhino
		cmd=(rhino -e "var s = 0; for (var i = 0; i < 200000; i++) { s += i % 7; } print('sum ' + s);")
		;;
	*)
		echo "unknown workload $1 (known: ${workload_names[*]})" >&2
		return 1
		;;
	esac
}
