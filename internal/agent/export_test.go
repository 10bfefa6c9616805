package agent

// SetPauseFaults makes the runs of s call before when a pause is about to be stored (its approvals
// linked to their tool calls) and after once it is stored (its approval_required events not yet
// published); a test blocks in them to kill the run there.
func (s *Service) SetPauseFaults(before, after func(sessionID string)) {
	s.faults.beforePause, s.faults.afterPause = before, after
}
