// Package agentapi is the agent's contract with the modules that follow it (ops, voice, monitor): the
// facts it publishes (agent.run_ended) and the types they share. It imports nothing of IT0 but leaves
// (the bus, the outbox envelope, the tenant context), so a module can react to the agent without
// importing the agent's service.
package agentapi
