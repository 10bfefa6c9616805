package ops_test

import (
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/ops"
)

// ops does not import the agent (it declares what it needs of it); these assert the two still fit.
var (
	_ agent.ToolProvider = (*ops.Orders)(nil)
	_ agent.OriginNamer  = (*ops.Orders)(nil)
	_ ops.Agent          = (*agent.Service)(nil)
	_ ops.OrderAgent     = (*agent.Service)(nil)
)
