# SPDX-License-Identifier: GPL-2.0
#
# The front door.  Everything runs as root on Debian 12; the scripts
# install what they need.  See README.md.

.PHONY: all kernel testhost run check series survey clean distclean

all: kernel

kernel:
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

# The work as a git format-patch series on top of the pinned upstream.
series:
	bash scripts/make-series.sh

# Run every upstream x86 KVM selftest on the vanilla kernel, N times, to
# choose the regression suite (tests/kvm-regression.list).
survey:
	bash scripts/survey-kvm.sh

clean:
	rm -rf build/obj build/testhost build/selftests build/results

distclean:
	rm -rf build
