package voice

// SegmenterConfig tunes when speech starts and ends. Durations are counted in VAD frames; zero fields
// default to the same durations whatever the VAD's frame length.
type SegmenterConfig struct {
	// FrameMs is the length of the VAD's frames (default 20; Silero's windows are 32).
	FrameMs int
	// StartThreshold and EndThreshold are the VAD probabilities that open and close a segment (hysteresis:
	// defaults 0.5 and 0.35).
	StartThreshold, EndThreshold float32
	// StartFrames of speech in a row open a segment (default 40 ms' worth, at least 2 frames); EndFrames
	// of silence in a row close it (default 500 ms' worth: comma pauses are bridged).
	StartFrames, EndFrames int
	// PreRollFrames of audio before the onset are kept in the segment (default 200 ms' worth), MaxFrames
	// caps its length (default 15 s' worth).
	PreRollFrames, MaxFrames int
}

func (c *SegmenterConfig) defaults() {
	if c.FrameMs <= 0 {
		c.FrameMs = FrameMs
	}
	frames := func(ms int) int { return (ms + c.FrameMs - 1) / c.FrameMs }
	if c.StartThreshold == 0 {
		c.StartThreshold = 0.5
	}
	if c.EndThreshold == 0 {
		c.EndThreshold = 0.35
	}
	if c.StartFrames <= 0 {
		c.StartFrames = max(frames(40), 2)
	}
	if c.EndFrames <= 0 {
		c.EndFrames = frames(500)
	}
	if c.PreRollFrames <= 0 {
		c.PreRollFrames = frames(200)
	}
	if c.MaxFrames <= 0 {
		c.MaxFrames = frames(15000)
	}
}

// SegmentEvent is what one frame did to the segmenter.
type SegmentEvent int

// Segmenter events.
const (
	SegNone  SegmentEvent = iota
	SegStart              // speech began (the onset: barge-in acts on it)
	SegEnd                // speech ended: Segment holds the utterance
)

// Segmenter cuts a stream of VAD-scored frames into utterances. Not safe for concurrent use.
type Segmenter struct {
	cfg      SegmenterConfig
	speaking bool
	run      int       // frames in a row above (idle) or below (speaking) the threshold
	pre      [][]int16 // ring of recent frames while idle
	seg      []int16   // the utterance while speaking
	frames   int
}

// NewSegmenter returns a segmenter with cfg's zero fields defaulted.
func NewSegmenter(cfg SegmenterConfig) *Segmenter {
	cfg.defaults()
	return &Segmenter{cfg: cfg}
}

// Speaking reports whether an utterance is open.
func (s *Segmenter) Speaking() bool { return s.speaking }

// Push adds one frame with its VAD probability p. On SegEnd, the returned samples are the utterance (the
// caller owns them).
func (s *Segmenter) Push(frame []int16, p float32) (SegmentEvent, []int16) {
	if !s.speaking {
		s.pre = append(s.pre, append([]int16(nil), frame...))
		if len(s.pre) > s.cfg.PreRollFrames {
			s.pre = s.pre[1:]
		}
		if p >= s.cfg.StartThreshold {
			s.run++
		} else {
			s.run = 0
		}
		if s.run < s.cfg.StartFrames {
			return SegNone, nil
		}
		s.speaking, s.run, s.frames = true, 0, len(s.pre)
		s.seg = s.seg[:0]
		for _, f := range s.pre {
			s.seg = append(s.seg, f...)
		}
		s.pre = s.pre[:0]
		return SegStart, nil
	}
	s.seg = append(s.seg, frame...)
	s.frames++
	if p < s.cfg.EndThreshold {
		s.run++
	} else {
		s.run = 0
	}
	if s.run < s.cfg.EndFrames && s.frames < s.cfg.MaxFrames {
		return SegNone, nil
	}
	out := append([]int16(nil), s.seg...)
	s.speaking, s.run = false, 0
	return SegEnd, out
}

// Reset drops any open utterance.
func (s *Segmenter) Reset() {
	s.speaking, s.run, s.frames = false, 0, 0
	s.pre, s.seg = s.pre[:0], s.seg[:0]
}
