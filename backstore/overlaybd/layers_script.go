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
	"strconv"
	"strings"
)

// File type bits of an ext4 inode mode.
const (
	modeDir   = 0o040000
	modeReg   = 0o100000
	modeChar  = 0o020000
	modeBlock = 0o060000
	modeFifo  = 0o010000
)

// scripter turns the entries of one layer tar into debugfs requests that
// make the same changes to the ext4 image, following the changeset rules
// ApplyLayer follows on a directory. It writes two request files: the
// first makes and removes names, working inside each entry's directory so
// that debugfs looks up one name, not a path; the second, written once the
// first has run and reported the new inode numbers, sets every new inode's
// attributes by number. Regular file contents and extended attribute
// values go to files in dataDir, which debugfs reads.
type scripter struct {
	w       *bufio.Writer
	tree    *fsTree
	dataDir string
	files   int
	stats   ApplyStats
	cwd     *fsNode // debugfs's current directory, nil when unknown
	// allocs are the temporary numbers of the inodes that "write" and
	// "mknod" make, in request order: debugfs reports each new number.
	allocs []int
	// listed are the directories where mkdir or symlink made inodes,
	// which debugfs does not report: a listing at the end tells them.
	listed map[*fsNode]string
	lists  []*fsNode
}

func newScripter(w io.Writer, tree *fsTree, dataDir string) (*scripter, error) {
	if err := checkScriptName(dataDir); err != nil {
		return nil, fmt.Errorf("work directory %q: %w", dataDir, err)
	}
	tree.startLayer()
	return &scripter{w: bufio.NewWriterSize(w, 1<<20), tree: tree, dataDir: dataDir, listed: map[*fsNode]string{}}, nil
}

// checkScriptName refuses what debugfs's command line parser cannot carry
// inside double quotes.
func checkScriptName(s string) error {
	if strings.ContainsAny(s, "\"\n\r\x00") {
		return errors.New("names with double quotes or line breaks cannot be written by debugfs")
	}
	return nil
}

// checkBase refuses, besides, a name debugfs would read as an inode number.
func checkBase(s string) error {
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		return errors.New("a name of the form <N> cannot be written by debugfs")
	}
	return checkScriptName(s)
}

func quote(s string) string { return `"` + s + `"` }

// fsPath is p (clean, relative) as an absolute, quoted debugfs argument.
func fsPath(p string) string {
	if p == "." {
		return `"/"`
	}
	return `"/` + p + `"`
}

// inoSpec names node: by number once it is known, else by path.
func inoSpec(n *fsNode, p string) string {
	if n.Ino > 0 {
		return "<" + strconv.Itoa(n.Ino) + ">"
	}
	return fsPath(p)
}

func (s *scripter) cmd(args ...string) {
	s.w.WriteString(strings.Join(args, " "))
	s.w.WriteByte('\n')
}

// cd makes dir (at path p) debugfs's current directory.
func (s *scripter) cd(p string, dir *fsNode) {
	if s.cwd != dir {
		s.cmd("cd", inoSpec(dir, p))
		s.cwd = dir
	}
}

// finish ends the first request file: listings of the directories where
// inodes were made that debugfs does not report.
func (s *scripter) finish() error {
	for _, d := range s.lists {
		if p := s.listed[d]; s.tree.lookup(p) == d {
			s.cmd("ls", "-p", inoSpec(d, p))
			continue
		}
		s.listed[d] = "" // gone again: nothing to learn
	}
	return s.w.Flush()
}

func (s *scripter) listLater(p string, dir *fsNode) {
	if _, ok := s.listed[dir]; !ok {
		s.listed[dir] = p
		s.lists = append(s.lists, dir)
	}
}

func (s *scripter) entry(hdr *tar.Header, r io.Reader) error {
	s.stats.Entries++
	if err := checkScriptName(hdr.Name); err != nil {
		return err
	}
	name, err := entryName(hdr)
	if name == "" || err != nil {
		return err
	}
	if name == "." {
		s.tree.Root.touched = true
		return s.setMeta(s.tree.Root, modeDir, hdr)
	}
	dir, base := path.Split(name)
	if err := checkBase(base); err != nil {
		return err
	}
	parentPath, parent, err := s.tree.resolveDir(dir, s.mkdir)
	if err != nil {
		return err
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return s.whiteout(parentPath, parent, base)
	}
	ops := entryOps[entryAt]{dir: s.dir, file: s.file, symlink: s.symlink, hardlink: s.hardlink, special: s.special}
	return ops.apply(entryAt{path.Join(parentPath, base), parentPath, parent, base}, hdr, r)
}

// entryAt is where an entry goes: its path, and its parent's path and node.
type entryAt struct {
	full, parentPath string
	parent           *fsNode
	base             string
}

// mkdir makes a directory that an entry needs and the layer does not list.
func (s *scripter) mkdir(parentPath string, parent *fsNode, base string) {
	s.cd(parentPath, parent)
	s.cmd("mkdir", quote(base))
	s.listLater(parentPath, parent)
}

// makeRoom removes what is at e unless both it and the new entry are
// directories; it reports whether a directory was kept.
func (s *scripter) makeRoom(e entryAt, dir bool) bool {
	n := e.parent.Kids[e.base]
	if n == nil {
		return false
	}
	if dir && n.Dir {
		return true
	}
	s.removeNode(e.parent, e.base, e.full)
	return false
}

func (s *scripter) removeNode(parent *fsNode, base, full string) {
	for _, r := range s.tree.remove(parent, base, full) {
		s.cd(r.parentPath, r.parent)
		if r.dir {
			s.cmd("rmdir", quote(r.base))
		} else {
			s.cmd("rm", quote(r.base))
		}
	}
}

func (s *scripter) dir(e entryAt, hdr *tar.Header) error {
	n := e.parent.Kids[e.base]
	if !s.makeRoom(e, true) {
		s.cd(e.parentPath, e.parent)
		s.cmd("mkdir", quote(e.base))
		s.listLater(e.parentPath, e.parent)
		n = s.tree.newDir()
		e.parent.Kids[e.base] = n
	}
	n.touched = true
	return s.setMeta(n, modeDir, hdr)
}

func (s *scripter) file(e entryAt, hdr *tar.Header, r io.Reader) error {
	s.makeRoom(e, false)
	host, err := s.dataFile(r)
	if err != nil {
		return err
	}
	s.stats.Bytes += hdr.Size
	s.cd(e.parentPath, e.parent)
	s.cmd("write", host, quote(e.base))
	n := s.tree.newFile("")
	s.allocs = append(s.allocs, n.Ino)
	e.parent.Kids[e.base] = n
	return s.setMeta(n, modeReg, hdr)
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
	return quote(p), nil
}

func (s *scripter) symlink(e entryAt, hdr *tar.Header) error {
	if hdr.Linkname == "" {
		return errors.New("symlink with an empty target")
	}
	if err := checkScriptName(hdr.Linkname); err != nil {
		return fmt.Errorf("symlink target: %w", err)
	}
	s.makeRoom(e, false)
	s.cd(e.parentPath, e.parent)
	s.cmd("symlink", quote(e.base), quote(hdr.Linkname))
	s.listLater(e.parentPath, e.parent)
	n := s.tree.newFile(hdr.Linkname)
	e.parent.Kids[e.base] = n
	// A symlink's permission bits are always 0777.
	return s.setMeta(n, 0o120777, &tar.Header{Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime, AccessTime: hdr.AccessTime, PAXRecords: hdr.PAXRecords})
}

// hardlink links e to an earlier name, of this layer or a lower one. The
// target is named from the root of the image: an absolute target or one
// climbing out with ".." is refused, not reinterpreted.
func (s *scripter) hardlink(e entryAt, hdr *tar.Header) error {
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
	if target == e.full {
		return nil
	}
	tn := tparent.Kids[tbase]
	if tn == nil {
		return fmt.Errorf("hard link target %q does not exist", hdr.Linkname)
	}
	if tn.Dir {
		return fmt.Errorf("hard link target %q is a directory", hdr.Linkname)
	}
	s.makeRoom(e, false)
	spec := inoSpec(tn, target)
	s.cd(e.parentPath, e.parent)
	s.cmd("ln", spec, quote(e.base))
	s.tree.Links[tn.Ino]++
	e.parent.Kids[e.base] = &fsNode{Symlink: tn.Symlink, Ino: tn.Ino, touched: true}
	// debugfs's ln leaves the count alone; it must be right before any
	// later rm of another name drops it to zero and frees the inode.
	s.cmd("sif", spec, "links_count", strconv.Itoa(s.tree.Links[tn.Ino]))
	return nil
}

func (s *scripter) special(e entryAt, hdr *tar.Header) error {
	var kind int64
	args := []string{"mknod", quote(e.base)}
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
	s.makeRoom(e, false)
	s.cd(e.parentPath, e.parent)
	s.cmd(args...)
	n := s.tree.newFile("")
	s.allocs = append(s.allocs, n.Ino)
	e.parent.Kids[e.base] = n
	return s.setMeta(n, kind, hdr)
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

// setMeta records the attributes the header gives n; they are set by the
// second request file. The extended attribute values are stored now.
func (s *scripter) setMeta(n *fsNode, kind int64, hdr *tar.Header) error {
	m := &nodeMeta{mode: kind | hdr.Mode&0o7777, uid: hdr.Uid, gid: hdr.Gid,
		atime: accessTime(hdr).Unix(), mtime: hdr.ModTime.Unix()}
	if kind == 0o120777 {
		m.mode = kind
	}
	for _, k := range sortedXattrKeys(hdr) {
		name := strings.TrimPrefix(k, xattrPAXPrefix)
		if err := checkScriptName(name); err != nil || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("extended attribute name %q cannot be written by debugfs", name)
		}
		host, err := s.dataFile(strings.NewReader(hdr.PAXRecords[k]))
		if err != nil {
			return err
		}
		m.xattrs = append(m.xattrs, [2]string{name, host})
	}
	n.meta = m
	return nil
}
