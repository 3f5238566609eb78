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
# a header to fill in.  A file that patches before PATCH in the series (or
# all of them, for a PATCH not in it yet) touch too is diffed against
# what they make of it.

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
# The base: pristine, with the patches before PATCH applied.  A patch
# after PATCH that touches one of FILE would end up in PATCH's diff.
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
series=$(awk '!/^#/ && NF {print $1}' "$CT_TOP/patches/series")
for q in $(printf '%s\n' "$series" | sed -n "/^$(basename "$p")\$/,\$p" | tail -n +2); do
	for f in "$@"; do
		grep -qx "+++ b/$f" "$CT_TOP/patches/$q" &&
			die "$q, later in the series, touches $f too: revert its change in $CT_SRC first"
	done
done
while read -r q; do
	[ "$q" = "$(basename "$p")" ] && break
	sed -n 's,^+++ b/\([^[:space:]]*\).*,\1,p' "$CT_TOP/patches/$q" |
		while read -r f; do
			if [ ! -e "$base/$f" ] && [ -e "$pristine/$f" ]; then
				mkdir -p "$base/$(dirname "$f")"
				cp "$pristine/$f" "$base/$f"
			fi
		done
	patch -d "$base" -p1 -N -F0 --batch --no-backup-if-mismatch -s \
		-i "$CT_TOP/patches/$q" || die "$q does not apply"
done <<<"$series"
{
	printf '%s\n' "$hdr"
	for f in "$@"; do
		if [ -e "$base/$f" ]; then
			diff -u --label "a/$f" --label "b/$f" "$base/$f" "$CT_SRC/$f" || true
		elif [ -e "$pristine/$f" ]; then
			diff -u --label "a/$f" --label "b/$f" "$pristine/$f" "$CT_SRC/$f" || true
		else
			diff -u --label /dev/null --label "b/$f" /dev/null "$CT_SRC/$f" || true
		fi
	done
} >"$p.new"
mv "$p.new" "$p"
stage "refreshed $(basename "$p"): $(grep -c '^+[^+]' "$p") lines added, $(grep -c '^-[^-]' "$p") removed"
