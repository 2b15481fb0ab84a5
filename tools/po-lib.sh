# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
# What tools/update-po.sh and tools/check-po.sh share; sourced from the top
# of the tree. po/meson.build passes xgettext the same arguments.

PO_XGETTEXT_ARGS=(--keyword=_ --keyword=N_ --from-code=UTF-8 --add-comments=TRANSLATORS:
	--package-name=safecad)
# Where the programs' sources are: every file here with a message for
# translation belongs in po/POTFILES.
PO_SOURCE_DIRS=(client common daemon)

# A list file (po/POTFILES, po/LINGUAS) without comments and blank lines.
po_list() {
	sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$1" | grep -v '^$' || true
}

# po_xgettext OUTPUT FILE...: the template of the files' messages (no
# OUTPUT is written when they have none).
po_xgettext() {
	local output=$1
	shift
	xgettext "${PO_XGETTEXT_ARGS[@]}" -o "$output" "$@"
}

# Every C file under PO_SOURCE_DIRS that holds a message for translation,
# as xgettext sees it (so "_(" in a comment or in __attribute__((…)) does
# not count), one a line, sorted.
po_message_sources() {
	local template files=()
	template=$(mktemp)
	mapfile -t files < <(find "${PO_SOURCE_DIRS[@]}" -type f \( -name '*.c' -o -name '*.h' \) |
		LC_ALL=C sort)
	po_xgettext "$template" "${files[@]}"
	sed -n 's/^#: //p' "$template" | tr ' ' '\n' | sed 's/:[0-9]*$//' | grep -v '^$' |
		LC_ALL=C sort -u
	rm -f "$template"
}
