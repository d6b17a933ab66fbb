package overlaybd

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layerCache keeps converted layers in a local directory, one directory per
// key: the layer blob and the converter's tree of the file system after
// it. The key covers the chain ID (the source layer and everything below
// it) and every setting that changes the blob, so a hit is the blob the
// conversion would make.
type layerCache struct {
	dir string
}

// cacheFormat changes whenever the blobs the converter makes for the same
// input change, so that old entries are not used.
const cacheFormat = "dejavu-layered-1"

func (c *layerCache) key(chain v1.Hash, settings string) string {
	sum := sha256.Sum256([]byte(cacheFormat + "\n" + chain.String() + "\n" + settings))
	return hex.EncodeToString(sum[:])
}

func (c *layerCache) blobPath(key string) string { return filepath.Join(c.dir, key, "layer.blob") }
func (c *layerCache) treePath(key string) string { return filepath.Join(c.dir, key, "tree.json") }

// has reports whether the entry is complete: the tree is written last.
func (c *layerCache) has(key string) bool {
	if c == nil {
		return false
	}
	_, err := os.Stat(c.treePath(key))
	return err == nil
}

// put stores a converted layer: the blob is copied, the tree encoded.
func (c *layerCache) put(key, blob string, tree *fsTree) error {
	dir := filepath.Join(c.dir, key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := copyFileAtomic(c.blobPath(key), blob); err != nil {
		return err
	}
	b, err := json.Marshal(tree)
	if err != nil {
		return err
	}
	tmp := c.treePath(key) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.treePath(key))
}

// tree reads the tree stored with an entry.
func (c *layerCache) tree(key string) (*fsTree, error) {
	b, err := os.ReadFile(c.treePath(key))
	if err != nil {
		return nil, err
	}
	t := &fsTree{}
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("cache entry %s: %w", key, err)
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("cache entry %s: %w", key, err)
	}
	return t, nil
}

func copyFileAtomic(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// removeIfExists removes p, and is content when it is gone already.
func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
