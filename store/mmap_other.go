//go:build !unix

package store

import "os"

// written keeps the file in memory and writes every change through to it,
// where memory mapping is not available.
type written struct {
	f   *os.File
	mem []byte
}

func mapFile(f *os.File, size int) (region, error) {
	mem := make([]byte, size)
	if _, err := f.ReadAt(mem, 0); err != nil {
		return nil, err
	}
	return &written{f: f, mem: mem}, nil
}

func (w *written) bytes() []byte { return w.mem }

func (w *written) wrote(off, n int) error {
	_, err := w.f.WriteAt(w.mem[off:off+n], int64(off))
	return err
}

func (w *written) sync() error  { return w.f.Sync() }
func (w *written) close() error { return w.f.Close() }
