#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# checkpatch --strict on every new kernel file and every patch in
# patches/, and sparse (C=2) on the directories holding our C code.
# One result per file.
#
#   lint.sh [RESULTS.json]

. "$(dirname "$0")/lib.sh"

out=${1:-}
# checkpatch runs scripts/spdxcheck.py with the first python3 in PATH: use
# Debian's, which has python3-ply and python3-git.
export PATH=/usr/bin:$PATH
CP=("$CT_SRC/scripts/checkpatch.pl" --strict --no-summary --quiet
	--show-types --root="$CT_SRC")
[ -x "$CT_SRC/scripts/checkpatch.pl" ] || die "no kernel tree: run scripts/build-kernel.sh first"
fails=0

record() { # group name why-or-ok
	if [ "$3" = ok ]; then
		echo "ok - $1: $2"
	else
		echo "not ok - $1: $2: $3"
		fails=$((fails + 1))
	fi
	ct_record "$out" "$1" "$2" "$3"
}

# New files: the overlay, less what checkpatch does not read.
while read -r f; do
	case $f in
	*.c | *.h | */Kconfig | */Makefile | *.rst | *.S | *.lds.S) ;;
	*) continue ;;
	esac
	if msg=$(cd "$CT_TOP" && "${CP[@]}" --no-tree -f "$f" 2>&1) && [ -z "$msg" ]; then
		record checkpatch "$f" ok
	else
		echo "$msg" | sed 's/^/#   /'
		record checkpatch "$f" "$(echo "$msg" | grep -m1 -E '^(ERROR|WARNING|CHECK)' || echo "$msg" | head -1)"
	fi
done < <(sort "$CT_BUILD/overlay.list")

# ignores PATCH: the checkpatch types patches/checkpatch.ignore waives for
# the patch whose name starts with PATCH's four-digit number.
ignores() {
	local n
	n=$(basename "$1" | cut -c1-4)
	awk -v n="$n" '$1 == n {print $2}' "$CT_TOP/patches/checkpatch.ignore" | paste -sd,
}

# checkpatch_patch GROUP FILE [ROOT]: ROOT is the tree the patch applies
# to; spdxcheck.py, which checkpatch runs on new files, wants a git tree.
checkpatch_patch() {
	local ign msg
	ign=$(ignores "$2")
	if msg=$("${CP[@]}" ${3:+--root="$3"} ${ign:+--ignore "$ign"} "$2" 2>&1) &&
		[ -z "$msg" ]; then
		record "$1" "$(basename "$2")" ok
	else
		echo "$msg" | sed 's/^/#   /'
		record "$1" "$(basename "$2")" "$(echo "$msg" | grep -m1 -E '^(ERROR|WARNING|CHECK)' || echo "$msg" | head -1)"
	fi
}

# The edits to upstream files, as kept in patches/ ...
for p in $(grep -v '^#' "$CT_TOP/patches/series" 2>/dev/null | awk '{print $1}'); do
	checkpatch_patch checkpatch "$CT_TOP/patches/$p"
done
# ... and the whole series as it would be posted (make series), when made.
for p in "$CT_BUILD"/series/[0-9][0-9][0-9][1-9]-*.patch; do
	[ -f "$p" ] && checkpatch_patch checkpatch-series "$p" "$CT_BUILD/series-git"
done

# sparse: rebuild our directories with C=2 and fail on any warning.
SPARSE=$("$CT_TOP/scripts/install-sparse.sh" | tail -1)
for d in $(cd "$CT_TOP" && find arch virt -name Makefile -printf '%h\n' | sort -u); do
	msg=$(make -s -C "$CT_SRC" O="$CT_OBJ" ARCH=x86_64 C=2 CHECK="$SPARSE" W=1 \
		CC="ccache gcc" -j"$CT_JOBS" "$d/" 2>&1 | grep -v '^ *\(CHECK\|CC\)' || true)
	if [ -z "$msg" ]; then
		record sparse "$d" ok
	else
		echo "$msg" | sed 's/^/#   /'
		record sparse "$d" "$(echo "$msg" | head -1)"
	fi
done
[ $fails = 0 ]
