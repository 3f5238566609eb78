#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Regenerate the diff of a patch in patches/ from the working tree:
#
#   refresh-patch.sh PATCH FILE...
#
# Edit upstream files in build/linux/, then run this to rewrite PATCH's
# diff as pristine -> build/linux for FILE...; the mail header and commit
# message (everything before the first diff) are kept.  A new PATCH gets
# a header to fill in.  Two patches may touch one file: PATCH's diff is
# from what the patches before it in the series (all of them, for a PATCH
# not in it yet) make of the file to build/linux's without the patches
# after it.

. "$(dirname "$0")/lib.sh"

p=$CT_TOP/patches/${1:?usage: refresh-patch.sh PATCH FILE...}
shift
[ $# -gt 0 ] || die "usage: refresh-patch.sh PATCH FILE..."
pristine=$CT_BUILD/linux-pristine

if [ -f "$p" ]; then
	hdr=$(awk '/^(--- a\/|diff )/ {exit} {print}' "$p")
else
	hdr=$(printf '%s\n' "From: Caretaker developers <caretaker-dev@lists.example.org>" \
		"Subject: [PATCH] TODO" "" "TODO: why." "" \
		"Signed-off-by: Caretaker developers <caretaker-dev@lists.example.org>" "---")
fi
# The base: pristine, with the patches before PATCH applied.  The new
# side: build/linux, with the patches after PATCH taken back out of the
# files they touch.
name=$(basename "$p")
base=$(mktemp -d)
tip=$(mktemp -d)
trap 'rm -rf "$base" "$tip"' EXIT
series=$(awk '!/^#/ && NF {print $1}' "$CT_TOP/patches/series")
# Copy FROM/f into DIR for each file a patch touches, unless there already.
copy_files() { # PATCH FROM DIR
	sed -n 's,^+++ b/\([^[:space:]]*\).*,\1,p' "$CT_TOP/patches/$1" |
		while read -r f; do
			if [ ! -e "$3/$f" ] && [ -e "$2/$f" ]; then
				mkdir -p "$3/$(dirname "$f")"
				cp "$2/$f" "$3/$f"
			fi
		done
}
while read -r q; do
	[ "$q" = "$name" ] && break
	copy_files "$q" "$pristine" "$base"
	patch -d "$base" -p1 -N -F0 --batch --no-backup-if-mismatch -s \
		-i "$CT_TOP/patches/$q" || die "$q does not apply"
done <<<"$series"
later=$(printf '%s\n' "$series" | awk -v n="$name" 'f; $0 == n {f = 1}')
for q in $later; do
	copy_files "$q" "$CT_SRC" "$tip"
done
for q in $(printf '%s\n' $later | tac); do
	patch -d "$tip" -p1 -R -F0 --batch --no-backup-if-mismatch -s \
		-i "$CT_TOP/patches/$q" || die "$q does not come back out of $CT_SRC"
done
{
	printf '%s\n' "$hdr"
	for f in "$@"; do
		new=$CT_SRC/$f
		[ -e "$tip/$f" ] && new=$tip/$f
		if [ -e "$base/$f" ]; then
			diff -u --label "a/$f" --label "b/$f" "$base/$f" "$new" || true
		elif [ -e "$pristine/$f" ]; then
			diff -u --label "a/$f" --label "b/$f" "$pristine/$f" "$new" || true
		else
			diff -u --label /dev/null --label "b/$f" /dev/null "$new" || true
		fi
	done
} >"$p.new"
mv "$p.new" "$p"
stage "refreshed $(basename "$p"): $(grep -c '^+[^+]' "$p") lines added, $(grep -c '^-[^-]' "$p") removed"
