package overlaybd

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
)

// fixedTime is the time e2fsprogs is told it is (E2FSPROGS_FAKE_TIME) while
// a layered image is made: it lands in the superblock and in the change and
// creation times of every inode, so it must not be the clock's.
// 2000-01-01T00:00:00Z.
const fixedTime = 946684800

// mke2fsConf pins the features of the file system, which a host's own
// /etc/mke2fs.conf would otherwise choose. No journal: the image is read
// only, and a journal would be megabytes in the bottom layer. No
// metadata_csum: debugfs checks the checksum of every directory block it
// reads, which was half of a conversion's time; uninit_bg keeps inode
// tables unwritten until used.
const mke2fsConf = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
[fs_types]
	ext4 = {
		features = extent,huge_file,flex_bg,uninit_bg,64bit,dir_nlink,extra_isize
	}
`

// e2env is the environment of the e2fsprogs runs: the fixed time and the
// pinned configuration.
func e2env(work string) ([]string, error) {
	conf := filepath.Join(work, "mke2fs.conf")
	if err := os.WriteFile(conf, []byte(mke2fsConf), 0o600); err != nil {
		return nil, err
	}
	return append(os.Environ(), "E2FSPROGS_FAKE_TIME="+strconv.Itoa(fixedTime), "MKE2FS_CONFIG="+conf), nil
}

// mkfsEmpty makes an empty ext4 file system of size bytes at out whose
// UUID and directory hash seed are fixed (derived from the image's first
// chain ID), so that the same first layer always yields the same blocks.
func mkfsEmpty(ctx context.Context, out string, size int64, fsUUID string, env []string, log *slog.Logger) error {
	prog, err := findProgram("mke2fs")
	if err != nil {
		return err
	}
	args := []string{"-t", "ext4", "-F", "-q", "-U", fsUUID,
		"-E", "lazy_itable_init=1,hash_seed=" + fsUUID, out, strconv.FormatInt(size/1024, 10) + "k"}
	log.Debug("mke2fs", "args", args)
	return runE2(ctx, prog, args, env)
}

func runE2(ctx context.Context, prog string, args, env []string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(prog), strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// debugfsRun is debugfs working on the image, reading its requests from
// a pipe as they are written, so that it applies a layer while the layer
// is still being read.
type debugfsRun struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr bytes.Buffer
}

func startDebugfs(ctx context.Context, image string, env []string) (*debugfsRun, error) {
	prog, err := findProgram("debugfs")
	if err != nil {
		return nil, err
	}
	r := &debugfsRun{cmd: exec.CommandContext(ctx, prog, "-w", "-f", "-", image)}
	r.cmd.Env = env
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("debugfs: %w", err)
	}
	return r, nil
}

// abort stops a run whose requests are incomplete.
func (r *debugfsRun) abort() {
	r.cmd.Process.Kill()
	r.stdin.Close()
	r.cmd.Wait()
}

// wait ends the requests and returns what debugfs printed. debugfs exits 0
// whatever its requests did, so anything on its error stream but the
// version banner is a failure.
func (r *debugfsRun) wait() (*bytes.Buffer, error) {
	cerr := r.stdin.Close()
	if err := r.cmd.Wait(); err != nil {
		return nil, fmt.Errorf("debugfs: %w: %s", err, strings.TrimSpace(r.stderr.String()))
	}
	if cerr != nil {
		return nil, fmt.Errorf("debugfs: requests: %w", cerr)
	}
	var bad []string
	for _, l := range strings.Split(r.stderr.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "debugfs ") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("(%d more)", len(bad)-5))
		}
		return nil, fmt.Errorf("debugfs: %s", strings.Join(bad, "; "))
	}
	return &r.stdout, nil
}

// blockHashes are the hashes of the fsBlock blocks in an image's data
// spans, taken before a layer is applied: enough to find the blocks the
// layer changed without keeping a copy of the image. The hash is 64-bit
// with a seed of this process, so no input can be made to collide.
type blockHashes struct {
	seed  maphash.Seed
	spans []hashSpan
}

type hashSpan struct {
	start int64 // a multiple of fsBlock
	sums  []uint64
}

func hashImage(f *os.File) (*blockHashes, error) {
	h := &blockHashes{seed: maphash.MakeSeed()}
	buf := make([]byte, 1<<20)
	err := blockSpans(f, buf, func(start int64, blocks []byte) error {
		k := len(h.spans)
		if k == 0 || h.spans[k-1].start+int64(len(h.spans[k-1].sums))*fsBlock != start {
			h.spans = append(h.spans, hashSpan{start: start})
			k++
		}
		for i := 0; i < len(blocks); i += fsBlock {
			h.spans[k-1].sums = append(h.spans[k-1].sums, maphash.Bytes(h.seed, blocks[i:min(i+fsBlock, len(blocks))]))
		}
		return nil
	})
	return h, err
}

// at returns the hash of the block at off, or false for a hole.
func (h *blockHashes) at(off int64) (uint64, bool) {
	i := sort.Search(len(h.spans), func(i int) bool {
		s := h.spans[i]
		return s.start+int64(len(s.sums))*fsBlock > off
	})
	if i == len(h.spans) || h.spans[i].start > off {
		return 0, false
	}
	return h.spans[i].sums[(off-h.spans[i].start)/fsBlock], true
}

// changedExtents lists the blocks of cur that differ from the image prev
// hashed: blocks whose new content is all zeros become zeroed (trimmed)
// extents, which store no data. debugfs never punches holes, so only cur's
// data needs reading.
func changedExtents(prev *blockHashes, cur *os.File) ([]lsmt.Extent, error) {
	var out []lsmt.Extent
	add := func(off int64, zero bool) {
		if k := len(out); k > 0 && out[k-1].Offset+out[k-1].Length == off && out[k-1].Zeroed == zero {
			out[k-1].Length += fsBlock
			return
		}
		out = append(out, lsmt.Extent{Offset: off, Length: fsBlock, Zeroed: zero})
	}
	err := blockSpans(cur, make([]byte, 1<<20), func(start int64, blocks []byte) error {
		for i := 0; i < len(blocks); i += fsBlock {
			b, off := blocks[i:min(i+fsBlock, len(blocks))], start+int64(i)
			old, ok := prev.at(off)
			switch {
			case !ok && !allZero(b):
				add(off, false)
			case ok && old != maphash.Bytes(prev.seed, b):
				add(off, allZero(b))
			}
		}
		return nil
	})
	return out, err
}
