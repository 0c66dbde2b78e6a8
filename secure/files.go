package secure

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// readPrivateFile reads a key or trust file after checking that it is a
// regular file whose permission bits have none of forbidden set (ignored on
// Windows, whose permission bits say nothing about other users).
func readPrivateFile(path, what string, forbidden fs.FileMode) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secure: %s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secure: %s: %w", what, err)
	}
	if err := checkMode(path, what, fi, forbidden); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("secure: %s %s: %w", what, path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("secure: %s %s is larger than %d bytes", what, path, maxKeyFile)
	}
	return data, nil
}

func checkMode(path, what string, fi fs.FileInfo, forbidden fs.FileMode) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("secure: %s %s is not a regular file", what, path)
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&forbidden != 0 {
		who := "accessible by"
		if forbidden&0o044 == 0 {
			who = "writable by"
		}
		return fmt.Errorf("secure: %s %s is %s other users (mode %04o): refusing to use it; run chmod %04o %s",
			what, path, who, perm, perm&^forbidden, path)
	}
	return nil
}

// stamp identifies one version of a file, to notice when it changed.
type stamp struct {
	fi      fs.FileInfo
	mod     time.Time
	size    int64
	missing bool
}

func statStamp(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return stamp{missing: true}, nil
	}
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi: fi, mod: fi.ModTime(), size: fi.Size()}, nil
}

func (s stamp) same(o stamp) bool {
	if s.missing || o.missing {
		return s.missing == o.missing
	}
	return s.fi != nil && o.fi != nil && os.SameFile(s.fi, o.fi) && s.mod.Equal(o.mod) && s.size == o.size
}

// writeFileAtomic replaces path with data, mode 0600: a temporary file in
// the same directory, synced, then renamed over path, and the directory
// synced, so a crash leaves either the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
