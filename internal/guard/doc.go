// Package guard decides how risky a shell command is, from L0 (read-only,
// runs) to L3 (forbidden, always refused). It has no I/O.
//
// Commands are parsed with a real shell parser (mvdan.cc/sh) and every
// simple command in the tree is judged: lists, pipelines, subshells, $(…),
// backticks, process substitution, here-docs, function bodies and
// redirections. The guard looks through wrappers (sudo, env, timeout,
// xargs, find -exec, busybox …) and into inline code (bash -c, ssh host
// '…', kubectl exec -- …, psql -c, python -c …). What it cannot see (eval
// "$x", | sh, a variable as the program) is at least L2. The verdict is the
// highest level found, with the sub-command and rule that decided it.
//
// Operands are judged where they point: after a cd in the same command, as
// every path a glob may expand to, and with variables that may be empty
// expanded to nothing. Reads of credential material are at least L1 and mark
// the verdict Secret (its output is redacted by the callers), and
// (*Classifier).Raise applies the blast radius: the servers a command runs
// on may raise its level.
//
// The rules are data: ops-config/risk-patterns.yaml, loaded with LoadRules
// and made stricter per tenant with (*Rules).Override.
package guard
