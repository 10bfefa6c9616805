#!/usr/bin/env bash
# run.sh N - IT0's SSH fan-out next to the OpenSSH/xargs/Ansible baseline on
# N loopback targets, in the same run, with a comparison table against the
# targets of issue 4.
#
# Usage: bench/fanout/run.sh N            (from anywhere; builds ./bench/fanout)
# Env:   IT0_RUNS (3)      timed cold and pooled runs of IT0
#        IT0_FLAGS         extra flags for the Go program (e.g. "-p 100")
#        IT0_RSS_N         also run IT0 alone on this many targets for RSS (e.g. 1000)
#        SKIP_BASELINE=1   IT0 only
#        RUNS (1) WARMUP (0) ANS_RUNS ANS_WARMUP SKIP_ANSIBLE SEQ_CAP KEX ...
#                          passed to fanout-baseline.sh; RUNS/WARMUP default
#                          lower than the script's own to keep N=200 near 10 min
#        BASELINE          path of fanout-baseline.sh (default ../shared/bench/
#                          from the repository root)
# Output: the table on stdout; raw outputs under bench/results/fanout-N-<time>/.
set -euo pipefail
export LC_ALL=C.UTF-8

N=${1:-}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 N" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BASELINE=${BASELINE:-$ROOT/../shared/bench/fanout-baseline.sh}
export RUNS=${RUNS:-1} WARMUP=${WARMUP:-0}
OUT=$ROOT/bench/results/fanout-$N-$(date +%Y%m%dT%H%M%S)
mkdir -p "$OUT"

# The baseline removes /run/sshd on exit if it created it; create it first so
# sshds started by anyone else (tests) keep their privsep directory.
if (( EUID == 0 )); then mkdir -p -m 0755 /run/sshd; fi

(cd "$ROOT" && go build -o "$OUT/fanout" ./bench/fanout)

echo "== IT0 fan-out, N=$N" >&2
# shellcheck disable=SC2086
"$OUT/fanout" -n "$N" -runs "${IT0_RUNS:-3}" ${IT0_FLAGS:-} > "$OUT/it0.json" 2> >(tee "$OUT/it0.log" >&2)
if [[ -n ${IT0_RSS_N:-} ]]; then
  echo "== IT0 fan-out, N=$IT0_RSS_N (RSS)" >&2
  # shellcheck disable=SC2086
  "$OUT/fanout" -n "$IT0_RSS_N" -runs 1 ${IT0_FLAGS:-} > "$OUT/it0-rss.json" 2> >(tee "$OUT/it0-rss.log" >&2)
fi
if [[ ${SKIP_BASELINE:-0} != 1 ]]; then
  echo "== baseline $BASELINE $N (RUNS=$RUNS WARMUP=$WARMUP)" >&2
  bash "$BASELINE" "$N" > "$OUT/baseline.txt"
  cat "$OUT/baseline.txt" >&2
fi

python3 - "$OUT" "$N" <<'PY' | tee "$OUT/comparison.txt"
import json, os, sys
out, n = sys.argv[1], int(sys.argv[2])
it0 = json.load(open(os.path.join(out, "it0.json")))
base = {}
bpath = os.path.join(out, "baseline.txt")
if os.path.exists(bpath):
    rows = False
    for line in open(bpath):
        if line.startswith("method "):
            rows = True
            continue
        if rows and line.strip():
            method, rest = line[:40].strip(), line[40:].split()
            try:
                base[method] = float(rest[1])
            except (ValueError, IndexError):
                pass
rss = None
rpath = os.path.join(out, "it0-rss.json")
if os.path.exists(rpath):
    rss = json.load(open(rpath))

print(f"# IT0 fan-out vs baseline, N={n}, parallelism={it0['parallelism']}, IT0 runs={it0['runs']} (median), load at end={open('/proc/loadavg').read().split()[0]}")
print(f"{'method':<42} {'wall_s':>9} {'vs IT0 cold':>12}")
print(f"{'IT0 cold (new connections)':<42} {it0['cold_s']:>9.3f} {'1.0x':>12}")
print(f"{'IT0 pooled (second run)':<42} {it0['warm_s']:>9.3f} {it0['cold_s']/it0['warm_s']:>11.1f}x")
for m, s in base.items():
    print(f"{m:<42} {s:>9.3f} {s/it0['cold_s']:>11.1f}x")
print()
print(f"{'target':<52} {'measured':>14} {'goal':>8} {'ok':>4}")
def row(name, val, goal, ok):
    print(f"{name:<52} {val:>14} {goal:>8} {'yes' if ok else 'NO':>4}")
def ratio(method, goal):
    if method in base:
        r = base[method] / it0['cold_s']
        row(f"cold {n} hosts faster than {method}", f"{r:.1f}x", f">={goal}x", r >= goal)
    else:
        row(f"cold {n} hosts faster than {method}", "not run", f">={goal}x", False)
ratio("ansible -f 50", 4)
ratio("ssh xargs -P 50", 1.5)
r = it0['cold_s'] / it0['warm_s']
row("pooled run faster than cold", f"{r:.1f}x", ">=5x", r >= 5)
c = max(it0['cold_cpu_ms_per_host'], it0['warm_cpu_ms_per_host'])
row("client CPU per host (cold)", f"{it0['cold_cpu_ms_per_host']:.2f} ms", "<5 ms", it0['cold_cpu_ms_per_host'] < 5)
row("client CPU per host (pooled)", f"{it0['warm_cpu_ms_per_host']:.2f} ms", "<5 ms", it0['warm_cpu_ms_per_host'] < 5)
row(f"peak RSS, {n} targets", f"{it0['max_rss_mb']:.0f} MB", "", True)
if rss:
    row(f"peak RSS, {rss['n']} targets", f"{rss['max_rss_mb']:.0f} MB", "<200 MB", rss['max_rss_mb'] < 200)
    row(f"  ({rss['n']} targets: cold {rss['cold_s']:.1f} s, pooled {rss['warm_s']:.1f} s)", "", "", True)
PY
echo "raw results in $OUT" >&2
