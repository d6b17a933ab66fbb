//go:build linux

package overlaybd

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dejavu-project/dejavu/internal/testutil/testenv"
)

var apMtime = time.Unix(1700000000, 0)

type apEntry struct {
	hdr  tar.Header
	body string
}

func apFile(name, body string, mode int64) apEntry {
	return apEntry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: apMtime}, body}
}

func apDir(name string, mode int64) apEntry {
	return apEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: apMtime}}
}

func apSymlink(name, target string) apEntry {
	return apEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: apMtime}}
}

func apHardlink(name, target string) apEntry {
	return apEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: apMtime}}
}

// apTar encodes entries as one layer tar.
func apTar(t *testing.T, entries ...apEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if len(h.PAXRecords) > 0 {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("tar body %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// apOpts lets the tests that do not check ownership run unprivileged.
func apOpts() []ApplyOption {
	if os.Geteuid() != 0 {
		return []ApplyOption{WithoutOwnership()}
	}
	return nil
}

func apOpenRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func apApply(t *testing.T, root *os.Root, layer []byte) ApplyStats {
	t.Helper()
	st, err := ApplyLayer(context.Background(), root, bytes.NewReader(layer), apOpts()...)
	if err != nil {
		t.Fatalf("ApplyLayer: %v", err)
	}
	return st
}

func apWantContent(t *testing.T, dir, rel, want string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Errorf("read %s: %v", rel, err)
		return
	}
	if string(b) != want {
		t.Errorf("%s = %q, want %q", rel, b, want)
	}
}

func apWantMissing(t *testing.T, dir, rel string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(dir, rel)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: want it gone, Lstat says %v", rel, err)
	}
}

func apLstat(t *testing.T, dir, rel string) (fs.FileInfo, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(dir, rel))
	if err != nil {
		t.Fatalf("lstat %s: %v", rel, err)
	}
	return fi, fi.Sys().(*syscall.Stat_t)
}

func apWantLink(t *testing.T, dir, rel, want string) {
	t.Helper()
	got, err := os.Readlink(filepath.Join(dir, rel))
	if err != nil || got != want {
		t.Errorf("readlink %s = %q, %v; want %q", rel, got, err, want)
	}
}

func TestApplyChangesets(t *testing.T) {
	dir := t.TempDir()
	root := apOpenRoot(t, dir)

	longName := "long/" + strings.Repeat("n", 200)
	deep := strings.Repeat("d/", 40) + "leaf"
	lower := apTar(t,
		apDir("etc/", 0o755),
		apFile("etc/hostname", "one\n", 0o644),
		apFile("etc/keep", "kept\n", 0o600),
		apFile("etc/gone", "bye\n", 0o644),
		apHardlink("etc/keep.hard", "etc/keep"),
		apSymlink("etc/rel", "keep"),
		apSymlink("etc/abs", "/etc/keep"),
		apDir("var/lib/app/", 0o755),
		apFile("var/lib/app/a", "a", 0o644),
		apFile("var/lib/app/b/c", "c", 0o644),
		apDir("opq/", 0o755),
		apFile("opq/lower1", "l1", 0o644),
		apFile("opq/sub/lower2", "l2", 0o644),
		apDir("d2f/", 0o755),
		apFile("d2f/x", "x", 0o644),
		apFile("f2d", "file", 0o644),
		apFile("usr/bin/su", "#!/bin/true\n", 0o4755),
		apFile(longName, "long", 0o644),
		apFile(deep, "deep", 0o644),
	)
	st := apApply(t, root, lower)
	if st.Entries != 19 || st.Whiteouts != 0 {
		t.Errorf("lower stats = %+v, want 19 entries, 0 whiteouts", st)
	}
	if want := int64(len("one\nkept\nbye\nacl1l2xfile#!/bin/true\nlongdeep")); st.Bytes != want {
		t.Errorf("lower stats bytes = %d, want %d", st.Bytes, want)
	}

	upper := apTar(t,
		apDir("etc/", 0o700),
		apFile("etc/hostname", "two\n", 0o644),
		apFile("etc/.wh.gone", "", 0o644),
		apFile("var/lib/.wh.app", "", 0o644),
		apFile("opq/new", "same layer, before", 0o644),
		apDir("opq/sub/", 0o755),
		apFile("opq/sub/same", "same layer", 0o644),
		apFile("opq/.wh..wh..opq", "", 0o644),
		apFile("opq/after", "same layer, after", 0o644),
		apFile("d2f", "now a file", 0o644),
		apDir("f2d/", 0o755),
		apFile("f2d/inner", "inside", 0o644),
		apFile("fresh/x/y", "parents made", 0o644),
	)
	st = apApply(t, root, upper)
	if st.Entries != 13 || st.Whiteouts != 3 {
		t.Errorf("upper stats = %+v, want 13 entries, 3 whiteouts", st)
	}

	apWantContent(t, dir, "etc/hostname", "two\n")
	apWantContent(t, dir, "etc/keep", "kept\n")
	apWantMissing(t, dir, "etc/gone")
	apWantMissing(t, dir, "etc/.wh.gone")
	apWantMissing(t, dir, "var/lib/app")
	if fi, _ := apLstat(t, dir, "var/lib"); !fi.IsDir() {
		t.Error("var/lib should stay a directory")
	}
	apWantMissing(t, dir, "var/lib/.wh.app")
	apWantMissing(t, dir, "opq/lower1")
	apWantMissing(t, dir, "opq/sub/lower2")
	apWantMissing(t, dir, "opq/.wh..wh..opq")
	apWantContent(t, dir, "opq/new", "same layer, before")
	apWantContent(t, dir, "opq/sub/same", "same layer")
	apWantContent(t, dir, "opq/after", "same layer, after")
	apWantContent(t, dir, "d2f", "now a file")
	apWantContent(t, dir, "f2d/inner", "inside")
	apWantContent(t, dir, "fresh/x/y", "parents made")
	apWantContent(t, dir, longName, "long")
	apWantContent(t, dir, deep, "deep")
	apWantLink(t, dir, "etc/rel", "keep")
	apWantLink(t, dir, "etc/abs", "/etc/keep")

	// A directory entry over a directory updates it and keeps its children;
	// its mtime is the header's although children were written after it.
	fi, _ := apLstat(t, dir, "etc")
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("etc mode = %v, want 0700", fi.Mode())
	}
	if !fi.ModTime().Equal(apMtime) {
		t.Errorf("etc mtime = %v, want %v", fi.ModTime(), apMtime)
	}
	fi, _ = apLstat(t, dir, "fresh/x")
	if !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("missing parent made as %v, want a 0755 directory", fi.Mode())
	}
	fi, _ = apLstat(t, dir, "usr/bin/su")
	if fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("usr/bin/su mode = %v, want setuid 0755", fi.Mode())
	}
	if !fi.ModTime().Equal(apMtime) {
		t.Errorf("usr/bin/su mtime = %v, want %v", fi.ModTime(), apMtime)
	}
	fi, _ = apLstat(t, dir, "etc/keep")
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("etc/keep mode = %v, want 0600", fi.Mode())
	}
	_, a := apLstat(t, dir, "etc/keep")
	_, b := apLstat(t, dir, "etc/keep.hard")
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("etc/keep.hard: inode %d nlink %d, want inode %d nlink 2", b.Ino, a.Nlink, a.Ino)
	}
}

func TestApplyOwnershipAndDevices(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	root := apOpenRoot(t, dir)

	owned := func(e apEntry) apEntry { e.hdr.Uid, e.hdr.Gid = 1000, 1000; return e }
	layer := apTar(t,
		owned(apDir("home/user/", 0o750)),
		owned(apFile("home/user/suid", "x", 0o6755)),
		owned(apSymlink("home/user/link", "suid")),
		apEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o640, ModTime: apMtime}},
		apEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: apMtime}},
		apEntry{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop9", Mode: 0o660, Devmajor: 7, Devminor: 9, Gid: 6, ModTime: apMtime}},
	)
	if _, err := ApplyLayer(context.Background(), root, bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"home/user", "home/user/suid", "home/user/link"} {
		if _, st := apLstat(t, dir, rel); st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("%s owned by %d:%d, want 1000:1000", rel, st.Uid, st.Gid)
		}
	}
	// Set-id bits survive the chown, which would clear them if done after.
	if fi, _ := apLstat(t, dir, "home/user/suid"); fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != fs.ModeSetuid|fs.ModeSetgid {
		t.Errorf("suid mode = %v, want setuid and setgid", fi.Mode())
	}
	if fi, _ := apLstat(t, dir, "home/user/link"); !fi.ModTime().Equal(apMtime) {
		t.Errorf("symlink mtime = %v, want %v", fi.ModTime(), apMtime)
	}
	fi, _ := apLstat(t, dir, "run/fifo")
	if fi.Mode().Type() != fs.ModeNamedPipe || fi.Mode().Perm() != 0o640 {
		t.Errorf("run/fifo mode = %v, want named pipe 0640", fi.Mode())
	}
	fi, st := apLstat(t, dir, "dev/null")
	if fi.Mode().Type() != fs.ModeDevice|fs.ModeCharDevice || fi.Mode().Perm() != 0o666 {
		t.Errorf("dev/null mode = %v, want char device 0666", fi.Mode())
	}
	if unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null is %d:%d, want 1:3", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	fi, st = apLstat(t, dir, "dev/loop9")
	if fi.Mode().Type() != fs.ModeDevice || unix.Major(st.Rdev) != 7 || unix.Minor(st.Rdev) != 9 || st.Gid != 6 {
		t.Errorf("dev/loop9 = %v %d:%d gid %d, want block 7:9 gid 6", fi.Mode(), unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Gid)
	}
}

func TestApplyXattrs(t *testing.T) {
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(probe, "user.probe", []byte("1"), 0); err != nil {
		t.Skipf("temporary file system refuses user xattrs: %v", err)
	}
	root := apOpenRoot(t, filepath.Join(dir, "root"))
	withX := func(e apEntry, v string) apEntry {
		e.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.test": v}
		return e
	}
	layer := apTar(t,
		withX(apDir("d/", 0o755), "on a dir"),
		withX(apFile("d/f", "content", 0o644), "on a file\x00with a NUL"),
		withX(apSymlink("d/l", "f"), "ignored on symlinks"),
	)
	apApply(t, root, layer)
	for rel, want := range map[string]string{"root/d": "on a dir", "root/d/f": "on a file\x00with a NUL"} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(dir, rel), "user.test", buf)
		if err != nil || string(buf[:n]) != want {
			t.Errorf("%s user.test = %q, %v; want %q", rel, buf[:max(n, 0)], err, want)
		}
	}
	apWantContent(t, dir, "root/d/f", "content")
}

func TestApplyConfinement(t *testing.T) {
	type check func(t *testing.T, root, outside string, err error)
	wantEscape := func(t *testing.T, _, _ string, err error) {
		if !errors.Is(err, ErrPathEscapes) {
			t.Errorf("err = %v, want ErrPathEscapes", err)
		}
	}
	wantOK := func(more check) check {
		return func(t *testing.T, root, outside string, err error) {
			if err != nil {
				t.Fatalf("ApplyLayer: %v", err)
			}
			more(t, root, outside, err)
		}
	}
	rel := func(p string) string { return strings.TrimPrefix(p, "/") }

	cases := []struct {
		name   string
		layers func(outside string) [][]apEntry
		check  check
	}{
		{"dotdot", func(string) [][]apEntry {
			return [][]apEntry{{apFile("../escape", "x", 0o644)}}
		}, wantEscape},
		{"dotdot inside name", func(string) [][]apEntry {
			return [][]apEntry{{apFile("a/b/../../../escape", "x", 0o644)}}
		}, wantEscape},
		{"absolute name is relative to root", func(string) [][]apEntry {
			return [][]apEntry{{apFile("/abs/escape", "x", 0o644)}}
		}, wantOK(func(t *testing.T, root, _ string, _ error) {
			apWantContent(t, root, "abs/escape", "x")
		})},
		{"hard link climbing out", func(string) [][]apEntry {
			return [][]apEntry{{apHardlink("passwd", "../../etc/passwd")}}
		}, wantEscape},
		{"absolute symlink to outside as parent", func(outside string) [][]apEntry {
			return [][]apEntry{{apSymlink("evil", outside), apFile("evil/marker", "x", 0o644), apDir("evil/newdir/", 0o755)}}
		}, wantOK(func(t *testing.T, root, outside string, _ error) {
			apWantContent(t, root, filepath.Join(rel(outside), "marker"), "x")
			apWantMissing(t, outside, "marker")
			apWantMissing(t, outside, "newdir")
		})},
		{"symlink to slash as parent", func(outside string) [][]apEntry {
			return [][]apEntry{{apSymlink("evil", "/"), apFile(filepath.Join("evil", outside, "marker"), "x", 0o644)}}
		}, wantOK(func(t *testing.T, root, outside string, _ error) {
			apWantContent(t, root, filepath.Join(rel(outside), "marker"), "x")
			apWantMissing(t, outside, "marker")
		})},
		{"relative symlink climbing out as parent", func(outside string) [][]apEntry {
			up := strings.Repeat("../", strings.Count(outside, "/")+3)
			return [][]apEntry{{apSymlink("sub/up", up), apFile(filepath.Join("sub/up", outside, "marker"), "x", 0o644)}}
		}, wantOK(func(t *testing.T, root, outside string, _ error) {
			apWantContent(t, root, filepath.Join(rel(outside), "marker"), "x")
			apWantMissing(t, outside, "marker")
		})},
		{"file over a symlink to outside", func(outside string) [][]apEntry {
			return [][]apEntry{
				{apSymlink("victim", filepath.Join(outside, "secret"))},
				{apFile("victim", "new", 0o644)},
			}
		}, wantOK(func(t *testing.T, root, outside string, _ error) {
			apWantContent(t, root, "victim", "new")
		})},
		{"hard link through a symlink to outside", func(outside string) [][]apEntry {
			return [][]apEntry{{apSymlink("evil", outside), apHardlink("stolen", "evil/secret")}}
		}, func(t *testing.T, root, outside string, err error) {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("err = %v, want not-exist (the target is looked up inside the root)", err)
			}
			apWantMissing(t, root, "stolen")
		}},
		{"whiteouts through a symlink to outside", func(outside string) [][]apEntry {
			return [][]apEntry{
				{apSymlink("evil", outside)},
				{apFile("evil/.wh.secret", "", 0o644), apFile("evil/.wh..wh..opq", "", 0o644)},
			}
		}, wantOK(func(t *testing.T, _, _ string, _ error) {})},
		{"symlink loop", func(string) [][]apEntry {
			return [][]apEntry{{apSymlink("a", "b"), apSymlink("b", "a"), apFile("a/x", "x", 0o644)}}
		}, func(t *testing.T, _, _ string, err error) {
			if !errors.Is(err, syscall.ELOOP) {
				t.Errorf("err = %v, want ELOOP", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			secret := filepath.Join(outside, "secret")
			if err := os.WriteFile(secret, []byte("original"), 0o644); err != nil {
				t.Fatal(err)
			}
			rootDir := filepath.Join(base, "root")
			root := apOpenRoot(t, rootDir)
			var err error
			for _, l := range c.layers(outside) {
				if _, err = ApplyLayer(context.Background(), root, bytes.NewReader(apTar(t, l...)), apOpts()...); err != nil {
					break
				}
			}
			c.check(t, rootDir, outside, err)
			apWantMissing(t, base, "escape")
			apWantContent(t, outside, "secret", "original")
			if _, st := apLstat(t, outside, "secret"); st.Nlink != 1 {
				t.Errorf("outside secret has %d links, want 1", st.Nlink)
			}
			entries, _ := os.ReadDir(outside)
			if len(entries) != 1 {
				t.Errorf("outside directory holds %d entries, want only secret", len(entries))
			}
		})
	}
}

func TestApplyBadInput(t *testing.T) {
	root := apOpenRoot(t, t.TempDir())
	good := apTar(t, apFile("a", strings.Repeat("x", 4096), 0o644))
	if _, err := ApplyLayer(context.Background(), root, bytes.NewReader(good[:1000]), apOpts()...); err == nil {
		t.Error("truncated tar applied without error")
	}
	if _, err := ApplyLayer(context.Background(), root, strings.NewReader(strings.Repeat("not a tar ", 100)), apOpts()...); err == nil {
		t.Error("garbage applied without error")
	}
	if _, err := ApplyLayer(context.Background(), root, bytes.NewReader(apTar(t, apFile(".", "x", 0o644))), apOpts()...); err == nil {
		t.Error("a file named . applied without error")
	}
	if _, err := ApplyLayer(context.Background(), root, bytes.NewReader(apTar(t, apFile(".wh..", "", 0o644))), apOpts()...); err == nil {
		t.Error("whiteout of .. applied without error")
	}
	fresh := apOpenRoot(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ApplyLayer(ctx, fresh, bytes.NewReader(good), apOpts()...); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: err = %v, want context.Canceled", err)
	}
	apWantMissing(t, fresh.Name(), "a")
}

func TestApplyGoldenLayers(t *testing.T) {
	dir := t.TempDir()
	root := apOpenRoot(t, dir)
	for _, name := range []string{"layer1.tar", "layer2.tar"} {
		f, err := os.Open(filepath.Join(testenv.OverlaybdTestdata(t), "golden", "apply", name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ApplyLayer(context.Background(), root, f, apOpts()...)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	apWantContent(t, dir, "etc/hostname", "golden-host-v2\n")
	apWantContent(t, dir, "opt/new.txt", "added in layer 2\n")
	apWantContent(t, dir, "usr/bin/tool.sh", "#!/bin/sh\necho golden\n")
	if ents, err := os.ReadDir(filepath.Join(dir, "var/log")); err != nil || len(ents) != 0 {
		t.Errorf("var/log holds %v (%v), want an empty directory", ents, err)
	}
	if fi, _ := apLstat(t, dir, "etc/empty.conf"); fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("etc/empty.conf = %v size %d, want empty 0600", fi.Mode(), fi.Size())
	}
	fi, blob := apLstat(t, dir, "usr/lib/blob.bin")
	if fi.Size() != 200*1024 {
		t.Errorf("blob.bin size = %d, want %d", fi.Size(), 200*1024)
	}
	if _, hard := apLstat(t, dir, "usr/lib/blob-hard"); hard.Ino != blob.Ino {
		t.Errorf("blob-hard inode %d, want blob.bin's %d", hard.Ino, blob.Ino)
	}
	apWantLink(t, dir, "usr/lib/blob-link", "blob.bin")
}
