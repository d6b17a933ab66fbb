package overlaybd

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
)

// Inode numbers mke2fs gives the root and lost+found.
const (
	rootIno       = 2
	lostFoundIno  = 11
	lostFoundName = "lost+found"
)

// fsTree is what the converter knows of the ext4 file system it writes
// into: the names, which are directories, every name's inode number and the
// link count of every other inode. debugfs offers no recursive removal, no
// way to ask for a link count, and looking a path up costs a scan of every
// directory on the way, so the tree is kept here, carried from layer to
// layer (and through the conversion cache), and requests name inodes by
// number wherever the number is known.
type fsTree struct {
	Root *fsNode
	// Links counts the names of each non-directory inode, by number.
	Links map[int]int
	// pending is the last temporary (negative) number handed out to an
	// inode that debugfs has not made yet.
	pending int
}

// fsNode is one name in the tree. Hard links share Ino.
type fsNode struct {
	Dir     bool               `json:",omitempty"`
	Symlink string             `json:",omitempty"` // target, for a symlink
	Ino     int                // negative until the layer that makes it has run
	Kids    map[string]*fsNode `json:",omitempty"`
	touched bool               // created or named by the layer being applied
	meta    *nodeMeta          // attributes the layer gives it, set once it exists
}

// nodeMeta is what a tar header says of an entry's inode.
type nodeMeta struct {
	mode         int64 // type and permission bits
	uid, gid     int
	atime, mtime int64
	xattrs       [][2]string // name, file holding the value
}

func newFSTree() *fsTree {
	t := &fsTree{Root: &fsNode{Dir: true, Ino: rootIno, Kids: map[string]*fsNode{}}, Links: map[int]int{}}
	t.Root.Kids[lostFoundName] = &fsNode{Dir: true, Ino: lostFoundIno, Kids: map[string]*fsNode{}}
	return t
}

func (t *fsTree) tempIno() int {
	t.pending--
	return t.pending
}

func (t *fsTree) newFile(symlink string) *fsNode {
	n := &fsNode{Symlink: symlink, Ino: t.tempIno(), touched: true}
	t.Links[n.Ino] = 1
	return n
}

func (t *fsTree) newDir() *fsNode {
	return &fsNode{Dir: true, Ino: t.tempIno(), Kids: map[string]*fsNode{}, touched: true}
}

// lookup returns the node at the clean relative path p, following no
// symlinks, or nil.
func (t *fsTree) lookup(p string) *fsNode {
	n := t.Root
	if p == "." {
		return n
	}
	for _, c := range strings.Split(p, "/") {
		if n == nil || !n.Dir {
			return nil
		}
		n = n.Kids[c]
	}
	return n
}

// resolveDir returns the real path of the clean relative directory dir and
// its node, with symlinks on the way expanded as if the tree were the root,
// and makes the directories that are missing (reporting each to mkdir with
// its parent). ".." at the top stays at the top.
func (t *fsTree) resolveDir(dir string, mkdir func(parentPath string, parent *fsNode, base string)) (string, *fsNode, error) {
	done, err := walkDir(path.Clean(dir), func(done []string, c string) (bool, string, error) {
		parentPath := joinRel(done)
		parent := t.lookup(parentPath)
		next := parent.Kids[c]
		switch {
		case next == nil:
			mkdir(parentPath, parent, c)
			parent.Kids[c] = t.newDir()
			return false, "", nil
		case next.Symlink != "":
			return true, next.Symlink, nil
		case !next.Dir:
			return false, "", &fs.PathError{Op: "resolve", Path: path.Join(parentPath, c), Err: syscall.ENOTDIR}
		}
		return false, "", nil
	})
	if err != nil {
		return "", nil, err
	}
	p := joinRel(done)
	return p, t.lookup(p), nil
}

func joinRel(parts []string) string {
	if len(parts) == 0 {
		return "."
	}
	return path.Join(parts...)
}

// removal is one name to take out of the file system.
type removal struct {
	parentPath string
	parent     *fsNode
	base       string
	dir        bool
}

// remove takes the node parent/name (at path p) out of the tree and
// returns the names to remove from the file system, children before their
// directory.
func (t *fsTree) remove(parent *fsNode, name, p string) []removal {
	n := parent.Kids[name]
	if n == nil {
		return nil
	}
	delete(parent.Kids, name)
	var out []removal
	var walk func(parentPath string, parent, n *fsNode, base string)
	walk = func(parentPath string, parent, n *fsNode, base string) {
		if n.Dir {
			p := path.Join(parentPath, base)
			for _, k := range sortedKids(n) {
				walk(p, n, n.Kids[k], k)
			}
		} else if t.Links[n.Ino]--; t.Links[n.Ino] <= 0 {
			delete(t.Links, n.Ino)
		}
		out = append(out, removal{parentPath, parent, base, n.Dir})
	}
	walk(path.Dir(p), parent, n, name)
	return out
}

func sortedKids(n *fsNode) []string {
	names := make([]string, 0, len(n.Kids))
	for k := range n.Kids {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// walk calls fn for every node, parents first, children in name order.
func (t *fsTree) walk(fn func(p string, n *fsNode)) {
	var rec func(p string, n *fsNode)
	rec = func(p string, n *fsNode) {
		fn(p, n)
		if n == nil {
			return
		}
		for _, k := range sortedKids(n) {
			rec(path.Join(p, k), n.Kids[k])
		}
	}
	rec(".", t.Root)
}

// startLayer forgets what the last layer named.
func (t *fsTree) startLayer() {
	t.walk(func(_ string, n *fsNode) { n.touched, n.meta = false, nil })
}

// resolve replaces temporary inode numbers by the real ones; every node
// must have one by now.
func (t *fsTree) resolve(real map[int]int) error {
	var bad []string
	t.walk(func(p string, n *fsNode) {
		if n.Ino >= 0 {
			return
		}
		r, ok := real[n.Ino]
		if !ok {
			bad = append(bad, p)
			return
		}
		n.Ino = r
	})
	if len(bad) > 0 {
		return fmt.Errorf("debugfs did not report the inode of %q", bad[0])
	}
	for tmp, r := range real {
		if c, ok := t.Links[tmp]; ok {
			delete(t.Links, tmp)
			t.Links[r] = c
		}
	}
	t.pending = 0
	return nil
}

// check verifies a tree read back from the cache.
func (t *fsTree) check() error {
	if t.Root == nil || !t.Root.Dir {
		return errors.New("tree: no root directory")
	}
	if t.Links == nil {
		t.Links = map[int]int{}
	}
	var err error
	t.walk(func(p string, n *fsNode) {
		switch {
		case err != nil:
		case n == nil:
			err = fmt.Errorf("tree: %s: empty node", p)
		case n.Ino <= 0:
			err = fmt.Errorf("tree: %s: inode %d", p, n.Ino)
		case n.Dir && n.Kids == nil:
			n.Kids = map[string]*fsNode{}
		case !n.Dir && t.Links[n.Ino] <= 0:
			err = fmt.Errorf("tree: %s: inode %d has no link count", p, n.Ino)
		}
	})
	return err
}
