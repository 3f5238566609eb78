# SPDX-License-Identifier: GPL-2.0
# Common helpers for the caretaker build and test scripts.  Sourced, not run.

set -euo pipefail

CT_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CT_BUILD=${CT_BUILD:-$CT_TOP/build}
CT_CACHE=${CT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/caretaker}
CT_KVER_PIN=${CT_KVER_PIN:-7.3}
CT_SRC=$CT_BUILD/linux
CT_OBJ=$CT_BUILD/obj
CT_JOBS=${CT_JOBS:-$(($(nproc) + 1))}
CT_APT=$CT_BUILD/apt

mkdir -p "$CT_BUILD" "$CT_CACHE"

_ct_t0=$(date +%s)

# stage NAME: print a stage banner with the elapsed time of the whole script.
stage() {
	printf '==> [%4ss] %s\n' "$(($(date +%s) - _ct_t0))" "$*"
}

die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# timed NAME CMD...: run CMD and print how long it took.
timed() {
	local name=$1 t0 rc=0
	shift
	t0=$(date +%s)
	stage "$name"
	"$@" || rc=$?
	printf '==> %s: %ss (rc=%d)\n' "$name" "$(($(date +%s) - t0))" "$rc"
	return $rc
}

# apt_private LIST [apt-get|apt-cache] ARGS...: run apt-get (default) or
# apt-cache with a private sources list and state directory below $CT_APT,
# never touching the system's apt configuration.
apt_private() {
	local list=$1 tool=apt-get
	shift
	case $1 in apt-get|apt-cache) tool=$1; shift ;; esac
	mkdir -p "$CT_APT/$list/lists/partial" "$CT_APT/$list/cache/archives/partial"
	$tool -q \
		-o Dir::Etc::SourceList="$CT_APT/$list.sources.list" \
		-o Dir::Etc::SourceParts=- \
		-o Dir::State::Lists="$CT_APT/$list/lists" \
		-o Dir::Cache="$CT_APT/$list/cache" \
		-o APT::Get::List-Cleanup=0 \
		"$@"
}
