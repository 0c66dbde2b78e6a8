//go:build unix

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapped is a file mapped shared into memory: a store to it reaches the
// operating system's page cache at once, so it survives the process.
type mapped struct {
	f   *os.File
	mem []byte
}

func mapFile(f *os.File, size int) (region, error) {
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &mapped{f: f, mem: mem}, nil
}

func (m *mapped) bytes() []byte          { return m.mem }
func (m *mapped) wrote(off, n int) error { return nil }
func (m *mapped) sync() error            { return unix.Msync(m.mem, unix.MS_SYNC) }

func (m *mapped) close() error {
	err := unix.Munmap(m.mem)
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}
