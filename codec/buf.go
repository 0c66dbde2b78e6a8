package codec

import "io"

// appendWriter is an io.Writer that appends to a byte slice. It also
// implements io.ByteWriter and io.StringWriter, so encoders that look for
// those interfaces write to it directly instead of wrapping it in a buffer.
type appendWriter struct {
	b []byte
}

var (
	_ io.Writer       = (*appendWriter)(nil)
	_ io.ByteWriter   = (*appendWriter)(nil)
	_ io.StringWriter = (*appendWriter)(nil)
)

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *appendWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

// grow returns b with room for at least n more bytes after len(b). When it
// has to allocate, the new capacity is exactly len(b)+n, so callers that
// grow toward a limit never allocate past it.
func grow(b []byte, n int) []byte {
	if n <= cap(b)-len(b) {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// readLimited appends everything r yields to dst, failing with ErrTooLarge
// as soon as more than limit bytes have been read. The slice never grows
// past len(dst)+limit+1 bytes. hint is the expected output size: when it
// is right, the output is read with a single allocation.
func readLimited(dst []byte, r io.Reader, limit, hint int) ([]byte, error) {
	start := len(dst)
	// One byte more than the limit is enough to detect an overrun, and one
	// byte more than the hint lets the reader report EOF without a new
	// allocation when the hint is exact.
	budget := limit + 1
	dst = grow(dst, min(max(hint, 0)+1, budget))
	for {
		used := len(dst) - start
		if used > limit {
			return dst[:start], ErrTooLarge
		}
		if len(dst) == cap(dst) {
			// Double what we have, within the budget.
			dst = grow(dst, min(max(used, 4096), budget-used))
		}
		room := min(cap(dst)-len(dst), budget-used)
		n, err := r.Read(dst[len(dst) : len(dst)+room])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			if len(dst)-start > limit {
				return dst[:start], ErrTooLarge
			}
			return dst, nil
		}
		if err != nil {
			return dst[:start], err
		}
	}
}
