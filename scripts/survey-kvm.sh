#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Choose the KVM regression suite: run every upstream x86 KVM selftest in
# the nested test host, on the kernel built without our patches and files
# (CT_VANILLA=1, in build/vanilla/), and count passes.  Run 1 tries all of
# them (CT_SURVEY_TIMEOUT seconds each); runs 2..N repeat the ones that
# passed run 1, since a test that failed once is out anyway.  Prints one
# line per test:
#   NAME PASSES/RUNS MAX_SECONDS LAST_RESULT
# into build/vanilla/survey/table, from which tests/kvm-regression.list is
# written by hand, with a reason for every exclusion.

# The unpatched kernel, in a build directory of its own.
export CT_VANILLA=1 CT_BUILD=${CT_SURVEY_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build/vanilla}

. "$(dirname "$0")/lib.sh"

"$CT_TOP/scripts/build-kernel.sh"

RUNS=${CT_SURVEY_RUNS:-3}
TMO=${CT_SURVEY_TIMEOUT:-90}
SV=$CT_BUILD/survey
mkdir -p "$SV"

all=$(make -s -C "$CT_SRC/tools/testing/selftests/kvm" -f Makefile \
	-f <(printf 'print-%%:\n\t@echo $($*)\n') print-TEST_GEN_PROGS ARCH=x86_64 |
	tr ' ' '\n' | sed "s|^$CT_SRC/tools/testing/selftests/kvm/||" | grep .)
printf '%s\n' $all | sed "s/\$/ $TMO/" >"$SV/list.1"

for run in $(seq 1 "$RUNS"); do
	list=$SV/list.$run
	[ -s "$list" ] || break
	CT_TH=$SV/th CT_KVM_LIST=$list CT_PLANS= "$CT_TOP/scripts/build-testhost.sh"
	CT_TH=$SV/th "$CT_TOP/scripts/run-testhost.sh" "$SV/serial.$run.log" || true
	python3 "$CT_TOP/scripts/report.py" parse --plan "$SV/th/plan" \
		--out "$SV/results.$run.json" "$SV/serial.$run.log" >/dev/null || true
	# Times, from the CT-TEST-END lines.
	sed -n 's/^CT-TEST-END: kvm\/\(\S*\) rc=\([0-9]*\) secs=\([0-9]*\).*/\1 \2 \3/p' \
		"$SV/serial.$run.log" >"$SV/times.$run"
	awk '$2 == 0 {print $1}' "$SV/times.$run" | while read -r t; do
		grep "^$t " "$list"
	done >"$SV/list.$((run + 1))"
done

python3 - "$SV" "$RUNS" <<'PY' | tee "$SV/table"
import sys, os
sv, runs = sys.argv[1], int(sys.argv[2])
names = [l.split()[0] for l in open(f'{sv}/list.1')]
stat = {n: [0, 0, 0, 'not run'] for n in names}
for r in range(1, runs + 1):
    p = f'{sv}/times.{r}'
    if not os.path.exists(p):
        continue
    seen = set()
    for l in open(p):
        n, rc, secs = l.split()
        seen.add(n)
        s = stat[n]
        s[1] += 1
        s[0] += rc == '0'
        s[2] = max(s[2], int(secs))
        s[3] = {'0': 'pass', '4': 'skip', '137': 'timeout'}.get(rc, f'rc={rc}')
    for n in open(f'{sv}/list.{r}'):
        n = n.split()[0]
        if n not in seen:
            stat[n][1] += 1
            stat[n][3] = 'no result'
for n in names:
    p, t, secs, last = stat[n]
    print(f'{n} {p}/{t} {secs} {last}')
PY
