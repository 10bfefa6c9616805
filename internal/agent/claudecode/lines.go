package claudecode

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// errLineTooLong is returned by readLine for a line longer than the reader's limit.
var errLineTooLong = errors.New("stream-json line too long")

// lineReader reads newline-terminated lines of any length up to max bytes. bufio.Scanner's default
// 64 KiB token limit is far below what the CLI writes for big tool results.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// readLine returns the next line without its newline. A last line without a newline is returned with a
// nil error; io.EOF comes after it. A line over the limit is consumed up to its newline and reported as
// errLineTooLong (wrapped, with its size so far), so the caller may stop or go on.
func (lr *lineReader) readLine() ([]byte, error) {
	lr.buf = lr.buf[:0]
	tooLong := false
	n := 0
	for {
		chunk, err := lr.r.ReadSlice('\n')
		n += len(chunk)
		if !tooLong {
			if len(lr.buf)+len(chunk) > lr.max+1 { // +1: the newline does not count
				tooLong = true
				lr.buf = lr.buf[:0]
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == nil:
			if tooLong {
				return nil, fmt.Errorf("%w: more than %d bytes", errLineTooLong, lr.max)
			}
			return lr.buf[:len(lr.buf)-1], nil
		case errors.Is(err, io.EOF):
			if tooLong {
				return nil, fmt.Errorf("%w: more than %d bytes", errLineTooLong, lr.max)
			}
			if n == 0 {
				return nil, io.EOF
			}
			return lr.buf, nil
		default:
			return nil, err
		}
	}
}
