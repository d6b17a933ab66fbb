// Package safefile writes the files dejavu's commands produce (raw disk
// images, traces, exports, reports) so that an output path can never damage
// what is already there.
//
// A file is written under a temporary name in the target's own directory
// and renamed over the target only once it is complete, so readers see the
// old file or the new one, never half of one, and a failure leaves nothing
// behind. What may be replaced is decided before any work and again just
// before the rename:
//
//   - nothing there: the file is created;
//   - a regular file: replaced only with WithReplace(true), otherwise the
//     error wraps fs.ErrExist;
//   - anything else (a directory, a symbolic link, a device node, a FIFO,
//     a socket): never replaced, whatever the options; the error wraps
//     ErrNotRegular. A symbolic link is refused rather than followed, so
//     neither the link nor the file it names changes.
//
// Run as root, that is what keeps "-o /dev/null" from turning the machine's
// /dev/null into a regular file.
//
// Inputs a command reads whole (traces, results files) are opened with
// Open, which refuses anything but a regular file without blocking: open(2)
// of a FIFO with no writer would otherwise hang the command.
package safefile
