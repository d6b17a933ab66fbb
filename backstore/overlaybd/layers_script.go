package overlaybd

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// File type bits of an ext4 inode mode.
const (
	modeDir     = 0o040000
	modeReg     = 0o100000
	modeChar    = 0o020000
	modeBlock   = 0o060000
	modeFifo    = 0o010000
	modeSymlink = 0o120000
)

// scripter turns the entries of one layer tar into a debugfs request file
// that makes the same changes to the ext4 image, following the changeset
// rules ApplyLayer follows on a directory. Regular file contents and
// extended attribute values go to files in dataDir, which debugfs reads.
type scripter struct {
	w       *bufio.Writer
	tree    *fsTree
	dataDir string
	files   int
	stats   ApplyStats
	times   []scriptDirTime
}

type scriptDirTime struct {
	path         string
	node         *fsNode
	atime, mtime int64
}

func newScripter(w io.Writer, tree *fsTree, dataDir string) (*scripter, error) {
	if err := checkScriptName(dataDir); err != nil {
		return nil, fmt.Errorf("work directory %q: %w", dataDir, err)
	}
	tree.clearTouched()
	return &scripter{w: bufio.NewWriterSize(w, 1<<20), tree: tree, dataDir: dataDir}, nil
}

// checkScriptName refuses what debugfs's command line parser cannot carry
// inside double quotes.
func checkScriptName(s string) error {
	if strings.ContainsAny(s, "\"\n\r\x00") {
		return errors.New("names with double quotes or line breaks cannot be written by debugfs")
	}
	return nil
}

// fsPath is p (clean, relative) as an absolute, quoted debugfs argument.
func fsPath(p string) string {
	if p == "." {
		return `"/"`
	}
	return `"/` + p + `"`
}

func (s *scripter) cmd(args ...string) {
	s.w.WriteString(strings.Join(args, " "))
	s.w.WriteByte('\n')
}

// finish sets the times of the directories the layer named, last, as
// adding their children may have moved them, and flushes the script.
func (s *scripter) finish() error {
	for _, d := range s.times {
		if s.tree.lookup(d.path) != d.node {
			continue // replaced or removed later in the layer
		}
		s.setTimes(d.path, d.atime, d.mtime)
	}
	return s.w.Flush()
}

func (s *scripter) entry(hdr *tar.Header, r io.Reader) error {
	s.stats.Entries++
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if err := checkScriptName(hdr.Name); err != nil {
		return err
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("only a directory may stand for the root")
		}
		s.tree.Root.touched = true
		return s.dirMeta(".", s.tree.Root, hdr)
	}
	dir, base := path.Split(name)
	parentPath, parent, err := s.tree.resolveDir(dir, s.mkdir)
	if err != nil {
		return err
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return s.whiteout(parentPath, parent, base)
	}
	full := path.Join(parentPath, base)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return s.dir(full, parent, base, hdr)
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		return s.file(full, parent, base, hdr, r)
	case tar.TypeSymlink:
		return s.symlink(full, parent, base, hdr)
	case tar.TypeLink:
		return s.hardlink(full, parent, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return s.special(full, parent, base, hdr)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}

func (s *scripter) mkdir(p string) error {
	s.cmd("mkdir", fsPath(p))
	return nil
}

// makeRoom removes what is at parent/base unless both it and the new entry
// are directories; it reports whether a directory was kept.
func (s *scripter) makeRoom(full string, parent *fsNode, base string, dir bool) bool {
	n := parent.Kids[base]
	if n == nil {
		return false
	}
	if dir && n.Dir {
		return true
	}
	s.removeNode(parent, base, full)
	return false
}

func (s *scripter) removeNode(parent *fsNode, base, full string) {
	paths, dirs := s.tree.remove(parent, base, full)
	for i, p := range paths {
		if dirs[i] {
			s.cmd("rmdir", fsPath(p))
		} else {
			s.cmd("rm", fsPath(p))
		}
	}
}

func (s *scripter) dir(full string, parent *fsNode, base string, hdr *tar.Header) error {
	n := parent.Kids[base]
	if !s.makeRoom(full, parent, base, true) {
		s.cmd("mkdir", fsPath(full))
		n = newDirNode()
		parent.Kids[base] = n
	}
	n.touched = true
	return s.dirMeta(full, n, hdr)
}

func (s *scripter) dirMeta(full string, n *fsNode, hdr *tar.Header) error {
	if err := s.meta(full, modeDir, hdr); err != nil {
		return err
	}
	s.times = append(s.times, scriptDirTime{full, n, headerAtime(hdr), hdr.ModTime.Unix()})
	return nil
}

func (s *scripter) file(full string, parent *fsNode, base string, hdr *tar.Header, r io.Reader) error {
	s.makeRoom(full, parent, base, false)
	host, err := s.dataFile(r)
	if err != nil {
		return err
	}
	s.stats.Bytes += hdr.Size
	s.cmd("write", host, fsPath(full))
	parent.Kids[base] = s.tree.newFile("")
	if err := s.meta(full, modeReg, hdr); err != nil {
		return err
	}
	s.setTimes(full, headerAtime(hdr), hdr.ModTime.Unix())
	return nil
}

// dataFile stores the bytes of r in a new file of dataDir and returns its
// quoted name.
func (s *scripter) dataFile(r io.Reader) (string, error) {
	s.files++
	p := filepath.Join(s.dataDir, strconv.Itoa(s.files))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("read content: %w", err)
	}
	return `"` + p + `"`, nil
}

func (s *scripter) symlink(full string, parent *fsNode, base string, hdr *tar.Header) error {
	if hdr.Linkname == "" {
		return errors.New("symlink with an empty target")
	}
	if err := checkScriptName(hdr.Linkname); err != nil {
		return fmt.Errorf("symlink target: %w", err)
	}
	s.makeRoom(full, parent, base, false)
	s.cmd("symlink", fsPath(full), `"`+hdr.Linkname+`"`)
	parent.Kids[base] = s.tree.newFile(hdr.Linkname)
	s.owner(full, hdr)
	s.setTimes(full, headerAtime(hdr), hdr.ModTime.Unix())
	return nil
}

// hardlink links full to an earlier name, of this layer or a lower one.
// The target is named from the root of the image: an absolute target or
// one climbing out with ".." is refused, not reinterpreted.
func (s *scripter) hardlink(full string, parent *fsNode, base string, hdr *tar.Header) error {
	if path.IsAbs(hdr.Linkname) {
		return fmt.Errorf("hard link target %q is absolute: %w", hdr.Linkname, ErrPathEscapes)
	}
	if err := checkScriptName(hdr.Linkname); err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	name, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if name == "." {
		return errors.New("hard link to the root directory")
	}
	tdir, tbase := path.Split(name)
	tparentPath, tparent, err := s.tree.resolveDir(tdir, s.mkdir)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	target := path.Join(tparentPath, tbase)
	if target == full {
		return nil
	}
	tn := tparent.Kids[tbase]
	if tn == nil {
		return fmt.Errorf("hard link target %q does not exist", hdr.Linkname)
	}
	if tn.Dir {
		return fmt.Errorf("hard link target %q is a directory", hdr.Linkname)
	}
	s.makeRoom(full, parent, base, false)
	s.cmd("ln", fsPath(target), fsPath(full))
	*tn.Links++
	link := *tn
	link.touched = true
	parent.Kids[base] = &link
	s.cmd("sif", fsPath(target), "links_count", strconv.Itoa(*tn.Links))
	return nil
}

func (s *scripter) special(full string, parent *fsNode, base string, hdr *tar.Header) error {
	var kind int64
	args := []string{"mknod", `"` + base + `"`}
	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		if hdr.Devmajor < 0 || hdr.Devmajor > 0xFFF || hdr.Devminor < 0 || hdr.Devminor > 0xFFFFF {
			return fmt.Errorf("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
		}
		kind, args = modeChar, append(args, "c")
		if hdr.Typeflag == tar.TypeBlock {
			kind, args[2] = modeBlock, "b"
		}
		args = append(args, strconv.FormatInt(hdr.Devmajor, 10), strconv.FormatInt(hdr.Devminor, 10))
	default:
		kind, args = modeFifo, append(args, "p")
	}
	s.makeRoom(full, parent, base, false)
	// mknod takes a name in the current directory, not a path.
	s.cmd("cd", fsPath(path.Dir(full)))
	s.cmd(args...)
	s.cmd("cd", `"/"`)
	parent.Kids[base] = s.tree.newFile("")
	if err := s.meta(full, kind, hdr); err != nil {
		return err
	}
	s.setTimes(full, headerAtime(hdr), hdr.ModTime.Unix())
	return nil
}

func (s *scripter) whiteout(parentPath string, parent *fsNode, base string) error {
	s.stats.Whiteouts++
	if base == whiteoutOpaque {
		parent.touched = true
		s.prune(parentPath, parent)
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other ".wh..wh." names are aufs bookkeeping
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout name %q", base)
	}
	if n := parent.Kids[name]; n != nil && !n.touched {
		s.removeNode(parent, name, path.Join(parentPath, name))
	}
	return nil
}

// prune removes from dir what this layer did not put there, and recurses
// into the directories it did: an opaque marker hides all lower content.
func (s *scripter) prune(dirPath string, dir *fsNode) {
	for _, k := range sortedKids(dir) {
		n := dir.Kids[k]
		p := path.Join(dirPath, k)
		switch {
		case !n.touched:
			s.removeNode(dir, k, p)
		case n.Dir:
			s.prune(p, n)
		}
	}
}

// meta sets mode, owner and extended attributes.
func (s *scripter) meta(full string, kind int64, hdr *tar.Header) error {
	s.cmd("sif", fsPath(full), "mode", "0"+strconv.FormatInt(kind|hdr.Mode&0o7777, 8))
	s.owner(full, hdr)
	return s.xattrs(full, hdr)
}

func (s *scripter) owner(full string, hdr *tar.Header) {
	s.cmd("sif", fsPath(full), "uid", strconv.Itoa(hdr.Uid))
	s.cmd("sif", fsPath(full), "gid", strconv.Itoa(hdr.Gid))
}

func (s *scripter) xattrs(full string, hdr *tar.Header) error {
	var keys []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, xattrPAXPrefix) && len(k) > len(xattrPAXPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := strings.TrimPrefix(k, xattrPAXPrefix)
		if err := checkScriptName(name); err != nil || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("extended attribute name %q cannot be written by debugfs", name)
		}
		host, err := s.dataFile(strings.NewReader(hdr.PAXRecords[k]))
		if err != nil {
			return err
		}
		s.cmd("ea_set", "-f", host, fsPath(full), name)
	}
	return nil
}

func (s *scripter) setTimes(full string, atime, mtime int64) {
	s.cmd("sif", fsPath(full), "atime", "@"+strconv.FormatInt(atime, 10))
	s.cmd("sif", fsPath(full), "mtime", "@"+strconv.FormatInt(mtime, 10))
}

func headerAtime(hdr *tar.Header) int64 { return accessTime(hdr).Unix() }
