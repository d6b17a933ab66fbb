package treetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Spec sizes a generated tree.
type Spec struct {
	Files    int   // small files spread over nested directories
	MaxSmall int   // largest small file
	Big      int64 // one file of this size (0: none)
	Seed     uint64
}

// Generate writes a tree described by spec into dir (which must exist) and
// returns the bytes of file data written.
func Generate(t testing.TB, dir string, spec Spec) int64 {
	t.Helper()
	r := rand.New(rand.NewPCG(spec.Seed, 99))
	var total int64
	write := func(p string, data []byte, mode os.FileMode) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		total += int64(len(data))
	}
	content := func(n int) []byte {
		b := make([]byte, n)
		switch r.IntN(3) {
		case 0: // random
			for i := range b {
				b[i] = byte(r.Uint32())
			}
		case 1: // text
			for i := range b {
				b[i] = "abcdefgh ijklmnop\n"[(i*7+i/13)%18]
			}
		}
		return b // else zeros
	}
	for i := 0; i < spec.Files; i++ {
		d := filepath.Join(dir, fmt.Sprintf("d%02d", r.IntN(40)), fmt.Sprintf("s%d", r.IntN(5)))
		n := r.IntN(spec.MaxSmall + 1)
		if r.IntN(20) == 0 {
			n = 0
		}
		write(filepath.Join(d, fmt.Sprintf("f%05d.dat", i)), content(n), 0o644)
	}
	if spec.Big > 0 {
		b := make([]byte, spec.Big)
		for i := 0; i < len(b)/2; i++ {
			b[i] = byte(r.Uint32())
		}
		write(filepath.Join(dir, "big", "twenty.bin"), b, 0o644)
	}
	// A sparse file: data at both ends, a hole between.
	sp := filepath.Join(dir, "sparse", "holes.img")
	os.MkdirAll(filepath.Dir(sp), 0o755)
	f, err := os.Create(sp)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("start of a sparse file\n"))
	f.WriteAt([]byte("end of a sparse file\n"), 9<<20)
	f.Close()
	write(filepath.Join(dir, "sparse", "zeros.bin"), make([]byte, 3<<20+100), 0o644)
	// Names and modes.
	long := strings.Repeat("L", 251) + ".txt" // 255 bytes, the ext4 limit
	write(filepath.Join(dir, "names", long), []byte("long name\n"), 0o644)
	write(filepath.Join(dir, "names", "spaces and ünïcode ✓"), []byte("odd name\n"), 0o644)
	deep := dir
	for i := 0; i < 30; i++ {
		deep = filepath.Join(deep, fmt.Sprintf("level%02d", i))
	}
	write(filepath.Join(deep, "bottom"), []byte("deep\n"), 0o600)
	write(filepath.Join(dir, "bin", "setuid-tool"), []byte("#!/bin/sh\necho hi\n"), 0o755|fs.ModeSetuid)
	write(filepath.Join(dir, "bin", "secret"), []byte("s3cret\n"), 0o600)
	os.MkdirAll(filepath.Join(dir, "empty", "dir"), 0o755)
	// Links.
	mustDo(t, os.Symlink("../bin/setuid-tool", filepath.Join(dir, "names", "rel-link")))
	mustDo(t, os.Symlink("/etc/hostname", filepath.Join(dir, "names", "abs-link")))
	mustDo(t, os.Symlink("does/not/exist", filepath.Join(dir, "names", "dangling")))
	mustDo(t, os.Symlink(strings.Repeat("x/", 100)+"target", filepath.Join(dir, "names", "long-link")))
	write(filepath.Join(dir, "hard", "a"), []byte("hard linked\n"), 0o644)
	mustDo(t, os.Link(filepath.Join(dir, "hard", "a"), filepath.Join(dir, "hard", "b")))
	mustDo(t, os.Link(filepath.Join(dir, "hard", "a"), filepath.Join(dir, "names", "c")))
	if os.Geteuid() == 0 {
		mustDo(t, os.Lchown(filepath.Join(dir, "bin", "secret"), 1000, 1000))
		mustDo(t, os.Lchown(filepath.Join(dir, "names", "rel-link"), 1000, 1001))
	}
	return total
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Compare checks that got holds exactly the tree of want: the same names,
// types, permission bits, owners, sizes, contents, link targets and hard link
// groups. lost+found in got is ignored.
func Compare(t testing.TB, want, got string) {
	t.Helper()
	type entry struct {
		mode     fs.FileMode
		uid, gid uint32
		size     int64
		sum      [32]byte
		link     string
		ino      uint64
		nlink    uint64
	}
	scan := func(root string) map[string]entry {
		m := map[string]entry{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if rel == "lost+found" {
				return filepath.SkipDir
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			e := entry{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, ino: st.Ino, nlink: uint64(st.Nlink)}
			switch {
			case fi.Mode().IsRegular():
				e.size = fi.Size()
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				h := sha256.New()
				_, err = io.Copy(h, f)
				f.Close()
				if err != nil {
					return err
				}
				copy(e.sum[:], h.Sum(nil))
			case fi.Mode()&fs.ModeSymlink != 0:
				e.link, err = os.Readlink(p)
				if err != nil {
					return err
				}
			}
			m[rel] = e
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s: %v", root, err)
		}
		return m
	}
	w, g := scan(want), scan(got)
	bad := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	// Hard link groups: source inode -> copy inode must be one-to-one.
	inoMap := map[uint64]uint64{}
	for name, we := range w {
		ge, ok := g[name]
		if !ok {
			fail("%s: missing", name)
			continue
		}
		if name != "." && (we.mode != ge.mode || we.uid != ge.uid || we.gid != ge.gid) {
			fail("%s: mode %v %d:%d, want %v %d:%d", name, ge.mode, ge.uid, ge.gid, we.mode, we.uid, we.gid)
		}
		if we.size != ge.size || !bytes.Equal(we.sum[:], ge.sum[:]) {
			fail("%s: content differs (size %d, want %d)", name, ge.size, we.size)
		}
		if we.link != ge.link {
			fail("%s: link %q, want %q", name, ge.link, we.link)
		}
		if we.mode.IsRegular() {
			if prev, ok := inoMap[we.ino]; ok && prev != ge.ino {
				fail("%s: hard link broken", name)
			}
			inoMap[we.ino] = ge.ino
			if we.nlink != ge.nlink {
				fail("%s: %d links, want %d", name, ge.nlink, we.nlink)
			}
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			fail("%s: unexpected", name)
		}
	}
	if bad > 20 {
		t.Errorf("... and %d more differences", bad-20)
	}
}
