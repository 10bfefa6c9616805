package openai

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// errEventTooLong reports an SSE line over the reader's limit.
var errEventTooLong = errors.New("event stream line too long")

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	Name string
	Data []byte
}

// sseReader reads server-sent events (the WHATWG event-stream format): "data:" lines accumulate
// (joined by "\n"), "event:" names the event, lines starting with ':' are comments (keep-alives), a
// blank line dispatches. CR, LF and CRLF all end lines.
type sseReader struct {
	r    *bufio.Reader
	max  int
	line []byte
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 32<<10), max: max}
}

// next returns the next event with data. At the end of the stream a pending event is dispatched, then
// io.EOF is returned.
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data []byte
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && hasData {
				ev.Data = data
				return ev, nil
			}
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if hasData {
				ev.Data = data
				return ev, nil
			}
			ev = sseEvent{}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		case "event":
			ev.Name = string(value)
		}
	}
}

// readLine returns one line without its terminator; the slice is valid until the next call.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && len(s.line) > 0 {
				return s.line, nil
			}
			return nil, err
		}
		switch b {
		case '\n':
			return s.line, nil
		case '\r':
			if next, err := s.r.Peek(1); err == nil && next[0] == '\n' {
				_, _ = s.r.ReadByte()
			}
			return s.line, nil
		}
		if len(s.line) >= s.max {
			return nil, fmt.Errorf("%w: more than %d bytes", errEventTooLong, s.max)
		}
		s.line = append(s.line, b)
	}
}
