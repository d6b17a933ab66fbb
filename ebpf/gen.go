package ebpf

// Rebuilding needs clang and libbpf's headers (Debian: clang, libbpf-dev).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -I/usr/include/x86_64-linux-gnu" -target bpfel -type event blockread c/blockread.c
