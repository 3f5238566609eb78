# SPDX-License-Identifier: GPL-2.0
#
# The front door.  Everything runs as root on Debian 12; the scripts
# install what they need.  See README.md.

.PHONY: all kernel testhost run check demo bench series survey clean distclean

all: kernel

kernel:
	bash scripts/install-deps.sh
	bash scripts/build-kernel.sh

testhost: kernel
	bash scripts/build-testhost.sh

# Boot the test host once and print its report.
run: testhost
	bash scripts/run-testhost.sh build/testhost/serial.log
	python3 scripts/report.py parse --plan build/testhost/plan \
		--kunit tests/kunit.list build/testhost/serial.log

check:
	bash scripts/check.sh

# A guest carried across a VMM restart, shown live, with a timeline and a
# plot (build/perf-demo/report/demo.svg); and the measurement behind it,
# caretaker vs classic restart, as a table.  CT_ABSENCE_S (seconds without
# any VMM, default 5) and CT_RUNS (bench: runs of each kind, default 5)
# pass through the environment or the make command line.
demo:
	bash scripts/run-perf.sh demo

bench:
	bash scripts/run-perf.sh bench

# The work as a git format-patch series on top of the pinned upstream.
series:
	bash scripts/make-series.sh

# Run every upstream x86 KVM selftest on the vanilla kernel, N times, to
# choose the regression suite (tests/kvm-regression.list).
survey:
	bash scripts/survey-kvm.sh

clean:
	rm -rf build/obj build/testhost build/selftests build/results build/perf-demo build/perf-bench

distclean:
	rm -rf build
