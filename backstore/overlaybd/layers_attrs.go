package overlaybd

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// learnInodes reads what debugfs printed while it ran the first request
// file: "Allocated inode: N" after each write and mknod, in order, and the
// listings asked for at the end. It gives every new inode its number.
func (s *scripter) learnInodes(out io.Reader) error {
	real := map[int]int{}
	next := 0 // next entry of s.allocs
	var listing *fsNode
	lists := s.lists[:0:0]
	for _, d := range s.lists {
		if s.listed[d] != "" {
			lists = append(lists, d)
		}
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "debugfs: "):
			listing = nil
			if strings.HasPrefix(line, "debugfs: ls -p ") {
				if len(lists) == 0 {
					return fmt.Errorf("debugfs listed more directories than asked")
				}
				listing, lists = lists[0], lists[1:]
			}
		case strings.HasPrefix(line, "Allocated inode: "):
			n, err := strconv.Atoi(strings.TrimPrefix(line, "Allocated inode: "))
			if err != nil || n <= 0 || next >= len(s.allocs) {
				return fmt.Errorf("debugfs: unexpected %q", line)
			}
			real[s.allocs[next]] = n
			next++
		case listing != nil && strings.HasPrefix(line, "/"):
			// /INO/MODE/UID/GID/NAME/SIZE/; a name holds no "/".
			f := strings.Split(line, "/")
			if len(f) < 7 {
				return fmt.Errorf("debugfs: unexpected listing line %q", line)
			}
			ino, err := strconv.Atoi(f[1])
			if err != nil || ino <= 0 {
				return fmt.Errorf("debugfs: unexpected listing line %q", line)
			}
			if k := listing.Kids[f[5]]; k != nil && k.Ino < 0 {
				real[k.Ino] = ino
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("debugfs output: %w", err)
	}
	if next != len(s.allocs) {
		return fmt.Errorf("debugfs reported %d new inodes, want %d", next, len(s.allocs))
	}
	return s.tree.resolve(real)
}

// writeAttrs writes the second request file: mode, owner, times and
// extended attributes of every inode the layer made or named, by number.
func (s *scripter) writeAttrs(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	done := map[int]bool{}
	s.tree.walk(func(_ string, n *fsNode) {
		m := n.meta
		if m == nil || done[n.Ino] {
			return
		}
		done[n.Ino] = true
		ino := "<" + strconv.Itoa(n.Ino) + ">"
		sif := func(field, v string) { fmt.Fprintf(bw, "sif %s %s %s\n", ino, field, v) }
		sif("mode", "0"+strconv.FormatInt(m.mode, 8))
		sif("uid", strconv.Itoa(m.uid))
		sif("gid", strconv.Itoa(m.gid))
		for _, x := range m.xattrs {
			fmt.Fprintf(bw, "ea_set -f %s %s %s\n", x[1], ino, x[0])
		}
		sif("atime", "@"+strconv.FormatInt(m.atime, 10))
		sif("mtime", "@"+strconv.FormatInt(m.mtime, 10))
	})
	return bw.Flush()
}

func sortedXattrKeys(hdr *tar.Header) []string {
	var keys []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, xattrPAXPrefix) && len(k) > len(xattrPAXPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
