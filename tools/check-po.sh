#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fails, naming what is wrong, when the translations are behind the sources:
#  - a source file with messages for translation (client/, common/,
#    daemon/; xgettext decides) is missing from po/POTFILES, or POTFILES
#    names a file that is gone;
#  - a message of the sources, as xgettext extracts them now, has no
#    translation in a po/<language>.po of po/LINGUAS, or only a fuzzy one;
#  - msgfmt --check --check-format rejects a po/<language>.po (header,
#    plural forms, printf formats that differ from the message's);
#  - a translation is not in Unicode NFC (precomposed letters: "ệ", not
#    "ê" and a combining dot).
# tools/update-po.sh brings POTFILES and the .po files up to date; then
# translate what it marks. Exits 77 (skipped) without gettext's tools.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/po-lib.sh
. tools/po-lib.sh

for tool in xgettext msgmerge msgattrib msgfmt; do
	if ! command -v "$tool" >/dev/null; then
		echo "$tool is not installed (gettext): skipped"
		exit 77
	fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
fail() {
	echo "FAIL: $*"
	failed=1
}

# The messages of a PO file on stdin, one a line: the msgid as written in
# the file, and where the sources use it.
messages() {
	awk '
		/^#: / { where = where (where ? " " : "") substr($0, 4); next }
		/^msgid "/ { in_id = 1; id = substr($0, 8, length($0) - 8); next }
		/^"/ && in_id { id = id substr($0, 2, length($0) - 2); next }
		/^(msgid_plural|msgstr)/ {
			if (in_id && id != "")
				print "    \"" id "\" (" where ")"
			in_id = 0; id = ""; where = ""; next
		}
		/^$/ { in_id = 0; id = ""; where = "" }
	'
}

mapfile -t listed < <(po_list po/POTFILES)
existing=()
for file in "${listed[@]}"; do
	if [ -f "$file" ]; then
		existing+=("$file")
	else
		fail "po/POTFILES names $file, which does not exist"
	fi
done
while read -r file; do
	fail "$file has messages for translation but is not in po/POTFILES" \
		"(tools/update-po.sh adds it)"
done < <(comm -23 <(po_message_sources) <(printf '%s\n' "${listed[@]}" | LC_ALL=C sort -u))

# Every source file with messages, listed or not: a message is never
# missed because its file is.
mapfile -t sources < <({
	printf '%s\n' "${existing[@]}"
	po_message_sources
} | LC_ALL=C sort -u)
if ! po_xgettext "$work/safecad.pot" "${sources[@]}" || [ ! -s "$work/safecad.pot" ]; then
	fail "xgettext found no messages in ${sources[*]}"
	exit 1
fi
echo "$(grep -c '^msgid ' "$work/safecad.pot") messages in the sources (with the header)"

for language in $(po_list po/LINGUAS); do
	po=po/$language.po
	if [ ! -f "$po" ]; then
		fail "$po is missing (po/LINGUAS names $language)"
		continue
	fi
	if ! msgfmt --check --check-format -c -o /dev/null "$po" 2>"$work/msgfmt.log"; then
		fail "msgfmt rejects $po:"
		sed 's/^/    /' "$work/msgfmt.log"
	fi
	if ! msgmerge --quiet --no-fuzzy-matching -o "$work/$language.po" "$po" \
		"$work/safecad.pot" 2>"$work/msgmerge.log"; then
		fail "msgmerge cannot merge $po:"
		sed 's/^/    /' "$work/msgmerge.log"
		continue
	fi
	untranslated=$(msgattrib --untranslated --no-obsolete "$work/$language.po" | messages)
	fuzzy=$(msgattrib --only-fuzzy --no-obsolete "$work/$language.po" | messages)
	if [ -n "$untranslated" ]; then
		fail "$po has no translation for $(wc -l <<<"$untranslated") message(s):"
		echo "$untranslated"
	fi
	if [ -n "$fuzzy" ]; then
		fail "$po has only a fuzzy translation for $(wc -l <<<"$fuzzy") message(s):"
		echo "$fuzzy"
	fi
	if grep -q '^#, fuzzy' "$po"; then
		fail "$po has entries marked fuzzy (the header, or messages gone from the sources)"
	fi
	if ! /usr/bin/python3 - "$po" <<'PY'; then
import sys, unicodedata
path = sys.argv[1]
bad = [n for n, line in enumerate(open(path, encoding="utf-8"), 1)
       if unicodedata.normalize("NFC", line) != line]
for n in bad:
    print(f"    {path}:{n}")
sys.exit(1 if bad else 0)
PY
		fail "$po has text that is not in Unicode NFC (lines above)"
	fi
	echo "$po: $(msgfmt --statistics -o /dev/null "$work/$language.po" 2>&1)"
done

[ "$failed" = 0 ] && echo "The translations are complete."
exit "$failed"
