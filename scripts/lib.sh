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

# ccache for every compiler call of the build (kernel, selftests, sparse
# runs): kept in the cache, shared by clones (paths relative to the build).
export CCACHE_DIR=${CCACHE_DIR:-$CT_CACHE/ccache}
export CCACHE_BASEDIR=$CT_BUILD
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-6G}
export CCACHE_NOHASHDIR=1

_ct_t0=$(date +%s)

# stage NAME: print a stage banner with the elapsed time of the whole script.
stage() {
	printf '==> [%4ss] %s\n' "$(($(date +%s) - _ct_t0))" "$*"
}

# ct_record OUT GROUP NAME WHY: append one result to OUT (a results file of
# scripts/report.py); WHY is "ok" for a pass, else the reason it failed.
# Does nothing when OUT is empty.
ct_record() {
	[ -n "$1" ] || return 0
	if [ "$4" = ok ]; then
		python3 "$CT_TOP/scripts/report.py" record --out "$1" --group "$2" --name "$3" --ok
	else
		python3 "$CT_TOP/scripts/report.py" record --out "$1" --group "$2" --name "$3" --fail "$4"
	fi
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
