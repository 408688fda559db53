package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/kafkit/kafkit/internal/storage"
)

// readFile reads a whole small metadata file through the storage FS seam, so
// the in-memory mode keeps its metadata in memory too.
func readFile(fsys storage.FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	n, err := f.ReadAt(buf, 0)
	if err == io.EOF && n == len(buf) {
		err = nil
	}
	return buf[:n], err
}

// writeFileAtomic replaces name with data durably: write a temporary file,
// fsync it, rename it over name, fsync the directory. A crash leaves either
// the old or the new content, never a torn file.
func writeFileAtomic(fsys storage.FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	return fsys.SyncDir(path.Dir(name))
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// readJSON decodes the metadata file name into v; a missing file leaves v
// as it is.
func readJSON(fsys storage.FS, name string, v any) error {
	data, err := readFile(fsys, name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err == nil:
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}

// writeJSON replaces the metadata file name with v, as writeFileAtomic.
func writeJSON(fsys storage.FS, name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(fsys, name, data)
}
