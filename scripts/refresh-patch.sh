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
# a header to fill in.  Each upstream file belongs to one patch only.

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
{
	printf '%s\n' "$hdr"
	for f in "$@"; do
		if [ -e "$pristine/$f" ]; then
			diff -u --label "a/$f" --label "b/$f" "$pristine/$f" "$CT_SRC/$f" || true
		else
			diff -u --label /dev/null --label "b/$f" /dev/null "$CT_SRC/$f" || true
		fi
	done
} >"$p.new"
mv "$p.new" "$p"
stage "refreshed $(basename "$p"): $(grep -c '^+[^+]' "$p") lines added, $(grep -c '^-[^-]' "$p") removed"
