package overlaybd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dejavu-project/dejavu/backstore/lsmt"
)

// DefaultLayeredSize is the virtual size of a layered conversion unless
// WithSize says otherwise: overlaybd's convertor makes 64 GiB devices, and
// the size costs nothing, the device being sparse.
const DefaultLayeredSize = 64 << 30

// ConvertStats counts what a layered conversion did.
type ConvertStats struct {
	Layers    int // layers of the image
	Converted int // layers converted in this run
	Cached    int // layers taken from the conversion cache
}

// layered is one layered conversion under way.
type layered struct {
	cfg      buildConfig
	blob     blobConfig
	work     string
	image    string // the raw ext4 image, as of the last layer applied
	env      []string
	cache    *layerCache
	settings string
	vsize    int64
	layers   []v1.Layer
	diffIDs  []v1.Hash
	chains   []v1.Hash
	keys     []string
	blobs    []string // converted layer blobs, bottom first
	tree     *fsTree
	haveRaw  bool // image holds the stack of blobs so far
	stats    ConvertStats
	cleanup  sync.WaitGroup
}

// convertLayers converts every source layer into one overlaybd layer that
// holds only the blocks its changes write to the ext4 file system of the
// layers below.
func convertLayers(ctx context.Context, src v1.Image, scf *v1.ConfigFile, cfg buildConfig, work string) (*Built, error) {
	layers, err := src.Layers()
	if err != nil {
		return nil, fmt.Errorf("convert: list layers: %w", err)
	}
	if len(layers) == 0 {
		return nil, errors.New("convert: the image has no layers")
	}
	if len(layers) > lsmt.MaxLayers {
		return nil, fmt.Errorf("convert: %d layers, overlaybd stacks at most %d", len(layers), lsmt.MaxLayers)
	}
	ids, err := diffIDs(scf, len(layers))
	if err != nil {
		return nil, err
	}
	c := &layered{cfg: cfg, work: work, layers: layers, diffIDs: ids, chains: chainIDs(ids),
		image: filepath.Join(work, "image.ext4"), vsize: DefaultLayeredSize}
	if cfg.size > 0 {
		c.vsize = cfg.size
	}
	if c.blob, err = newBlobConfig(cfg.blob); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	if c.env, err = e2env(work); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	if c.settings, err = c.settingsKey(ctx); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	if cfg.cacheDir != "" {
		c.cache = &layerCache{dir: cfg.cacheDir}
	}
	for i := range layers {
		c.keys = append(c.keys, c.cache.key(c.chains[i], c.settings))
	}
	defer c.cleanup.Wait()
	for i := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.layer(ctx, i); err != nil {
			return nil, err
		}
	}
	os.Remove(c.image)
	c.stats.Layers = len(layers)
	img, err := newLayeredImage(c.blobs, scf, cfg)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	return &Built{Image: img, LayerPath: c.blobs[len(c.blobs)-1], LayerPaths: c.blobs,
		VirtualSize: c.vsize, Stats: c.stats, dir: work}, nil
}

// settingsKey names every setting that changes the blobs, for cache keys.
func (c *layered) settingsKey(ctx context.Context) (string, error) {
	prog, err := findProgram("mke2fs")
	if err != nil {
		return "", err
	}
	out, _ := exec.CommandContext(ctx, prog, "-V").CombinedOutput()
	ver, _, _ := strings.Cut(string(out), "\n")
	b := c.blob
	return fmt.Sprintf("size=%d compress=%v algo=%v block=%d tar=%v time=%d e2fsprogs=%s",
		c.vsize, b.compress, b.algo, b.blockSize, b.tar, fixedTime, strings.TrimSpace(ver)), nil
}

func (c *layered) layer(ctx context.Context, i int) error {
	d, _ := c.layers[i].Digest()
	log := c.cfg.log.With("layer", i, "digest", d)
	if c.cache.has(c.keys[i]) && !c.haveRaw {
		// Not needed yet: the image is rebuilt from the cached blobs only
		// if a later layer has to be converted.
		c.blobs = append(c.blobs, c.cache.blobPath(c.keys[i]))
		c.stats.Cached++
		log.Debug("layer from the conversion cache", "key", c.keys[i])
		return nil
	}
	start := time.Now()
	if err := c.prepare(ctx, i); err != nil {
		return fmt.Errorf("convert: layer %d (%s): %w", i, d, err)
	}
	blob, err := c.apply(ctx, i, log)
	if err != nil {
		return fmt.Errorf("convert: layer %d (%s): %w", i, d, err)
	}
	c.blobs = append(c.blobs, blob)
	c.stats.Converted++
	if c.cache != nil {
		if err := c.cache.put(c.keys[i], blob, c.tree); err != nil {
			return fmt.Errorf("convert: layer %d (%s): cache: %w", i, d, err)
		}
	}
	log.Debug("converted layer", "blob", blob, "took", time.Since(start))
	return nil
}

// prepare makes the image and tree the layer applies to: a new file
// system under the first layer, or the stack of cached blobs below it.
func (c *layered) prepare(ctx context.Context, i int) error {
	if c.haveRaw {
		return nil
	}
	c.haveRaw = true
	if i == 0 {
		c.tree = newFSTree()
		fsUUID := strings.ToLower(chainUUID(c.chains[0]))
		return mkfsEmpty(ctx, c.image, c.vsize, fsUUID, c.env, c.cfg.log)
	}
	t, err := c.cache.tree(c.keys[i-1])
	if err != nil {
		return err
	}
	c.tree = t
	start := time.Now()
	err = c.rebuildRaw(ctx)
	c.cfg.log.Debug("image rebuilt from cached layers", "layers", i, "took", time.Since(start))
	return err
}

// rebuildRaw writes the merged device of the blobs so far to the image.
func (c *layered) rebuildRaw(ctx context.Context) error {
	var blobs []*Blob
	for _, p := range c.blobs {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		b, err := OpenBlob(f, fi.Size())
		if err != nil {
			return fmt.Errorf("cached blob %s: %w", p, err)
		}
		blobs = append(blobs, b)
	}
	dev, err := OpenDevice(blobs...)
	if err != nil {
		return err
	}
	out, err := os.Create(c.image)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := WriteRaw(ctx, dev, out); err != nil {
		return err
	}
	return out.Close()
}

// apply applies source layer i to the image and writes its blob: the
// blocks that changed, under a UUID derived from its chain ID.
func (c *layered) apply(ctx context.Context, i int, log *slog.Logger) (string, error) {
	var prev *blockHashes
	if i > 0 {
		start := time.Now()
		var err error
		if prev, err = c.hashImage(); err != nil {
			return "", err
		}
		log.Debug("image hashed to diff against", "took", time.Since(start))
	}
	if err := c.runLayer(ctx, i, log); err != nil {
		return "", err
	}
	start := time.Now()
	cur, err := os.Open(c.image)
	if err != nil {
		return "", err
	}
	defer cur.Close()
	var ext []lsmt.Extent
	if i == 0 {
		ext, _, err = DataExtents(cur)
	} else {
		ext, err = changedExtents(prev, cur)
	}
	if err != nil {
		return "", err
	}
	opts := []lsmt.LayerOption{lsmt.WithUUID(chainUUID(c.chains[i]))}
	if i > 0 {
		opts = append(opts, lsmt.WithParentUUID(chainUUID(c.chains[i-1])))
	}
	blob := filepath.Join(c.work, fmt.Sprintf("layer-%03d.blob", i))
	out, err := os.Create(blob)
	if err != nil {
		return "", err
	}
	n, err := WriteBlob(out, cur, ext, c.vsize, append(c.cfg.blob, WithLayerOptions(opts...))...)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write blob: %w", err)
	}
	log.Debug("layer blob", "extents", len(ext), "bytes", n, "took", time.Since(start))
	return blob, nil
}

// runLayer applies source layer i to the image with debugfs, twice: once
// to make and remove names, fed as the layer is read (and its diff ID
// checked at the end), once to set the attributes of the inodes made.
func (c *layered) runLayer(ctx context.Context, i int, log *slog.Logger) error {
	data := filepath.Join(c.work, fmt.Sprintf("data-%03d", i))
	if err := os.Mkdir(data, 0o700); err != nil {
		return err
	}
	// Removing a layer's worth of files takes seconds: it runs beside the
	// next steps, and convertLayers waits for it.
	defer c.cleanup.Go(func() { os.RemoveAll(data) })
	start := time.Now()
	run, err := startDebugfs(ctx, c.image, c.env)
	if err != nil {
		return err
	}
	sc, err := c.readLayer(ctx, i, run.stdin, data)
	if err != nil {
		run.abort()
		return err
	}
	out, err := run.wait()
	if err != nil {
		return err
	}
	log.Debug("layer read and names made", "stats", sc.stats, "took", time.Since(start))
	if err := sc.learnInodes(out); err != nil {
		return err
	}
	start = time.Now()
	if run, err = startDebugfs(ctx, c.image, c.env); err != nil {
		return err
	}
	if err := sc.writeAttrs(run.stdin); err != nil {
		run.abort()
		return err
	}
	_, err = run.wait()
	log.Debug("attributes set", "took", time.Since(start))
	return err
}

// readLayer reads source layer i into requests written to w.
func (c *layered) readLayer(ctx context.Context, i int, w io.Writer, data string) (*scripter, error) {
	sc, err := newScripter(w, c.tree, data)
	if err != nil {
		return nil, err
	}
	src, err := openSourceLayer(c.layers[i], c.diffIDs[i])
	if err != nil {
		return nil, err
	}
	defer src.Close()
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := src.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && last != "" {
			return nil, fmt.Errorf("after entry %q: %w", last, err)
		}
		if err != nil {
			return nil, err
		}
		if err := sc.entry(hdr, src.tr); err != nil {
			return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		last = hdr.Name
	}
	if err := src.verify(); err != nil {
		return nil, err
	}
	return sc, sc.finish()
}

// hashImage hashes the image as it is before a layer, to diff against.
func (c *layered) hashImage() (*blockHashes, error) {
	f, err := os.Open(c.image)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return hashImage(f)
}
