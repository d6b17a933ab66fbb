package safefile

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Open opens an input file for reading, refusing anything that is not a
// regular file (a FIFO, a device node, a socket, a directory) with an error
// wrapping ErrNotRegular. The file is opened non-blocking, so that open(2)
// of a FIFO with no writer cannot hang the command, and made blocking again
// once it is known to be a regular file. A symbolic link to a regular file
// is followed: the user named it.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("input %s is a %s: %w", path, kind(fi.Mode()), ErrNotRegular)
	}
	if err == nil {
		if err = unix.SetNonblock(int(f.Fd()), false); err != nil {
			err = fmt.Errorf("input %s: %w", path, err)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
