#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo, make bench: what a VMM restart costs the guest, the
# caretaker's way and the classic way, measured in the nested test host by
# caretaker_orphan_test's demo and bench modes.
#
#   run-perf.sh demo|bench
#
# Builds what is missing (host packages, the kernel: incremental, the test
# host), boots a test host that runs tests/perf/MODE.plan and nothing else
# (no KVM regression tests, not make check's build/testhost), follows its
# serial console while it runs, then prints scripts/perf-report.py's
# report.  Everything lands in build/perf-MODE/: serial.log, the plan, and
# report/ (demo.svg; bench.txt and bench.csv).
#
# CT_ABSENCE_S   seconds without any VMM in each run (default 5)
# CT_RUNS        bench: runs of each kind, interleaved (default 5)

. "$(dirname "$0")/lib.sh"

mode=${1:-}
case $mode in
demo | bench) ;;
*) die "usage: run-perf.sh demo|bench" ;;
esac
absence_s=${CT_ABSENCE_S:-5}
runs=${CT_RUNS:-5}
if ! [[ $absence_s =~ ^[0-9]+$ ]] || [ "$absence_s" -lt 1 ] || [ "$absence_s" -gt 600 ]; then
	die "CT_ABSENCE_S=$absence_s: whole seconds, 1..600"
fi
if ! [[ $runs =~ ^[0-9]+$ ]] || [ "$runs" -lt 1 ] || [ "$runs" -gt 100 ]; then
	die "CT_RUNS=$runs: 1..100"
fi

TH=$CT_BUILD/perf-$mode
log=$TH/serial.log
out=$TH/report

"$CT_TOP/scripts/install-deps.sh"
"$CT_TOP/scripts/build-kernel.sh"

# The plan: the template with this run's figures.  A run lasts about
# 2 T plus 10-20 s of VM builds and the +-200 ms windows under TCG;
# budget 2 T + 40 s per run, 60 s more for the whole.
nr_runs=2
[ "$mode" = bench ] && nr_runs=$((2 * runs))
timeout_s=$((60 + nr_runs * (2 * absence_s + 40)))
mkdir -p "$TH"
sed -e "s/@ABSENCE_MS@/$((absence_s * 1000))/g" -e "s/@RUNS@/$runs/g" \
	-e "s/@TIMEOUT_S@/$timeout_s/g" "$CT_TOP/tests/perf/$mode.plan" >"$TH/$mode.plan"
echo "# make $mode runs no KVM regression tests" >"$TH/no-kvm.list"
CT_TH=$TH CT_PLANS=$TH/$mode.plan CT_KVM_LIST=$TH/no-kvm.list \
	"$CT_TOP/scripts/build-testhost.sh"

stage "make $mode: T = ${absence_s} s without a VMM$([ "$mode" = bench ] && echo ", $runs runs of each kind"); log $log"
rm -f "$log" "$TH/.done"
python3 "$CT_TOP/scripts/perf-report.py" --follow "$log" --done "$TH/.done" &
follower=$!
rc=0
CT_TH=$TH "$CT_TOP/scripts/run-testhost.sh" "$log" || rc=$?
touch "$TH/.done"
wait "$follower" || true
[ $rc = 0 ] || echo "run-testhost.sh exited with $rc"

stage "report ($out)"
python3 "$CT_TOP/scripts/perf-report.py" "$log" --mode "$mode" --out "$out"
