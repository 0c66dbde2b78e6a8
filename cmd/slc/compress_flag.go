package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/slc-go/slc"
)

// compressors are the values --compress accepts: the compressors built
// into slc.
var compressors = []string{"none", "s2", "zstd", "gzip"}

const compressUsage = "compress the messages every node sends (receivers decode every compressor, whatever their own setting)"

// compressFlag is the value of the global --compress flag. The zero value
// leaves the library's default (none).
type compressFlag struct{ name string }

func (c *compressFlag) String() string {
	if c.name == "" {
		return "none"
	}
	return c.name
}

// Set validates the name, so that a wrong value is reported as a flag
// error before any node starts.
func (c *compressFlag) Set(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	if !slices.Contains(compressors, s) {
		return fmt.Errorf("want one of %s", strings.Join(compressors, ", "))
	}
	c.name = s
	return nil
}

func (c *compressFlag) Type() string { return strings.Join(compressors, "|") }

// options returns the node options that apply the flag.
func (c *compressFlag) options() []slc.Option {
	if c.name == "" {
		return nil
	}
	return []slc.Option{slc.WithCompressor(c.name)}
}
