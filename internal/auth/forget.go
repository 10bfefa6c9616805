package auth

// OnForget registers fn, called each time this service drops a cached tenant status (userID "") or a
// cached user because it changed them (suspension, a role, a password, offboarding): other replicas that
// cache the same must drop theirs (Forget). fn must not block. A later call replaces fn.
func (s *Service) OnForget(fn func(tenantID, userID string)) { s.onForget.Store(&fn) }

// Forget drops the cached status of tenant tenantID (userID "") or the cached user userID of it, because
// another replica changed them. It does not call the OnForget func.
func (s *Service) Forget(tenantID, userID string) {
	if userID == "" {
		s.statusMu.Lock()
		delete(s.status, tenantID)
		s.statusMu.Unlock()
		return
	}
	s.usersMu.Lock()
	delete(s.users, tenantID+"/"+userID)
	s.usersMu.Unlock()
}

func (s *Service) forgotten(tenantID, userID string) {
	if fn := s.onForget.Load(); fn != nil && *fn != nil {
		(*fn)(tenantID, userID)
	}
}
