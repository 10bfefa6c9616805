package alerts_test

import (
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/monitor/alerts"
)

// alerts does not import the agent; this asserts its tools still fit the agent's ToolProvider.
var _ agent.ToolProvider = (*alerts.Tools)(nil)
