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

// fsTree is what the converter knows of the ext4 file system it is writing
// into: the names, which are directories, and which names share an inode.
// debugfs offers no recursive removal, no way to ask for a link count and
// no listing cheap enough to ask per entry, so the tree is kept here and
// carried from layer to layer (and through the conversion cache).
type fsTree struct {
	Root   *fsNode
	Inodes int // inodes handed out, to name hard link groups
}

// fsNode is one name in the tree. Non-directories that are hard links of
// one another share Ino, and Links counts them in every node of the group.
type fsNode struct {
	Dir     bool
	Symlink string // target, for a symlink
	Ino     int
	Links   *int               `json:"-"`
	Kids    map[string]*fsNode `json:",omitempty"`
	NLinks  int                `json:",omitempty"` // Links, for encoding
	touched bool               // created or named by the layer being applied
}

func newFSTree() *fsTree {
	return &fsTree{Root: &fsNode{Dir: true, Kids: map[string]*fsNode{}}}
}

func (t *fsTree) newFile(symlink string) *fsNode {
	t.Inodes++
	one := 1
	return &fsNode{Symlink: symlink, Ino: t.Inodes, Links: &one, touched: true}
}

func newDirNode() *fsNode {
	return &fsNode{Dir: true, Kids: map[string]*fsNode{}, touched: true}
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

// resolveDir returns the real path of the clean relative directory dir,
// with symlinks on the way expanded as if the tree were the root, and makes
// the directories that are missing (reporting each through mkdir). It never
// leaves the tree: ".." at the top stays at the top.
func (t *fsTree) resolveDir(dir string, mkdir func(p string) error) (string, *fsNode, error) {
	todo := strings.Split(path.Clean(dir), "/")
	var done []string
	n := t.Root
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
				n = t.lookup(joinRel(done))
			}
			continue
		}
		next := n.Kids[c]
		switch {
		case next == nil:
			p := joinRel(append(done, c))
			if err := mkdir(p); err != nil {
				return "", nil, err
			}
			next = newDirNode()
			n.Kids[c] = next
		case next.Symlink != "":
			if links++; links > maxApplySymlinks {
				return "", nil, &fs.PathError{Op: "resolve", Path: dir, Err: syscall.ELOOP}
			}
			if path.IsAbs(next.Symlink) {
				done, n = done[:0], t.Root
			}
			todo = append(strings.Split(next.Symlink, "/"), todo...)
			continue
		case !next.Dir:
			return "", nil, &fs.PathError{Op: "resolve", Path: joinRel(append(done, c)), Err: syscall.ENOTDIR}
		}
		done = append(done, c)
		n = next
	}
	return joinRel(done), n, nil
}

func joinRel(parts []string) string {
	if len(parts) == 0 {
		return "."
	}
	return path.Join(parts...)
}

// remove takes the node at p (child name of parent) out of the tree and
// returns the paths to remove in the file system, children before their
// directory; dirs tells which are directories.
func (t *fsTree) remove(parent *fsNode, name, p string) (paths []string, dirs []bool) {
	n := parent.Kids[name]
	if n == nil {
		return nil, nil
	}
	delete(parent.Kids, name)
	var walk func(n *fsNode, p string)
	walk = func(n *fsNode, p string) {
		if n.Dir {
			for _, k := range sortedKids(n) {
				walk(n.Kids[k], path.Join(p, k))
			}
		} else {
			*n.Links--
		}
		paths, dirs = append(paths, p), append(dirs, n.Dir)
	}
	walk(n, p)
	return paths, dirs
}

func sortedKids(n *fsNode) []string {
	names := make([]string, 0, len(n.Kids))
	for k := range n.Kids {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// clearTouched forgets which nodes the last layer named.
func (t *fsTree) clearTouched() {
	var walk func(n *fsNode)
	walk = func(n *fsNode) {
		n.touched = false
		for _, k := range n.Kids {
			walk(k)
		}
	}
	walk(t.Root)
}

// prepareEncode copies the shared link counts into the nodes, and
// afterDecode shares them again by inode.
func (t *fsTree) prepareEncode() {
	var walk func(n *fsNode)
	walk = func(n *fsNode) {
		if n.Links != nil {
			n.NLinks = *n.Links
		}
		for _, k := range n.Kids {
			walk(k)
		}
	}
	walk(t.Root)
}

func (t *fsTree) afterDecode() error {
	if t.Root == nil || !t.Root.Dir {
		return errors.New("tree: no root directory")
	}
	shared := map[int]*int{}
	var walk func(n *fsNode) error
	walk = func(n *fsNode) error {
		if n.Dir {
			if n.Kids == nil {
				n.Kids = map[string]*fsNode{}
			}
			for _, k := range n.Kids {
				if k == nil {
					return errors.New("tree: empty node")
				}
				if err := walk(k); err != nil {
					return err
				}
			}
			return nil
		}
		if n.Ino <= 0 || n.Ino > t.Inodes {
			return fmt.Errorf("tree: inode %d out of range", n.Ino)
		}
		if shared[n.Ino] == nil {
			c := n.NLinks
			shared[n.Ino] = &c
		}
		n.Links = shared[n.Ino]
		return nil
	}
	return walk(t.Root)
}
