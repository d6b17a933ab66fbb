package overlaybd

import (
	"io/fs"
	"path"
	"strings"
	"syscall"
)

// walkDir resolves the clean relative directory dir the way chroot would:
// component by component, ".." never above the top, every symlink met
// expanded (an absolute target starting again at the top), at most
// maxApplySymlinks of them. step says what component c of the directory
// done is: a directory (made if missing, as the caller sees fit) or a
// symlink to target. It returns the components of the real directory.
func walkDir(dir string, step func(done []string, c string) (symlink bool, target string, err error)) ([]string, error) {
	todo := strings.Split(dir, "/")
	var done []string
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
			}
			continue
		}
		symlink, target, err := step(done, c)
		if err != nil {
			return nil, err
		}
		if !symlink {
			done = append(done, c)
			continue
		}
		if links++; links > maxApplySymlinks {
			return nil, &fs.PathError{Op: "resolve", Path: dir, Err: syscall.ELOOP}
		}
		if path.IsAbs(target) {
			done = done[:0]
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return done, nil
}
