package alerts

import "time"

// transition is what one evaluation does to a rule's state on one server.
type transition uint8

const (
	evalStay    transition = iota // nothing changes
	evalPend                      // the condition starts to hold: pending
	evalFire                      // it has held for the duration: firing
	evalResolve                   // a firing alert's condition stopped holding
	evalClear                     // a pending condition stopped holding before the duration
)

// step is the `for:` state machine of Prometheus. st is the current state (nil: inactive); a pending
// state has no EventID, a firing one has. A condition that holds is pending until it has held for the
// duration (a single sample never fires a rule with a duration), then fires once; it resolves on the
// first evaluation where it does not hold.
func step(c Condition, st *State, value float64, at time.Time) transition {
	holds := c.Holds(value)
	switch {
	case holds && st == nil:
		if c.DurationSeconds == 0 {
			return evalFire
		}
		return evalPend
	case holds && st.EventID == "":
		if at.Sub(st.Since) >= time.Duration(c.DurationSeconds)*time.Second {
			return evalFire
		}
		return evalStay
	case holds:
		return evalStay
	case st == nil:
		return evalStay
	case st.EventID == "":
		return evalClear
	default:
		return evalResolve
	}
}
