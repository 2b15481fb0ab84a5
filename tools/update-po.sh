#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Brings the translations up to date with the sources: adds every source
# file that has messages to po/POTFILES (and drops files that are gone),
# regenerates po/safecad.pot, and
# merges it into each po/<language>.po of po/LINGUAS, where new messages
# show up untranslated and changed ones fuzzy ("#, fuzzy"); messages gone
# from the sources are dropped. Translate those, remove the fuzzy marks,
# then run tools/check-po.sh (the meson test "po" in the suite i18n).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools/po-lib.sh
. tools/po-lib.sh

version=$(sed -n "s/^[[:space:]]*version: '\([^']*\)'.*/\1/p" meson.build | head -n 1)
potfiles=$(mktemp)
trap 'rm -f "$potfiles"' EXIT

for file in $(po_list po/POTFILES); do
	[ -f "$file" ] || echo "po/POTFILES: dropped $file, which is gone" >&2
done
{
	for file in $(po_list po/POTFILES); do
		[ ! -f "$file" ] || echo "$file"
	done
	po_message_sources
} | LC_ALL=C sort -u >"$potfiles"
for file in $(comm -13 <(po_list po/POTFILES | LC_ALL=C sort) "$potfiles"); do
	echo "po/POTFILES: added $file"
done
{
	echo "# Source files with messages for translation (tools/update-po.sh keeps"
	echo "# this list; tools/check-po.sh fails when a file is missing)."
	cat "$potfiles"
} >po/POTFILES

mapfile -t sources < <(po_list po/POTFILES)
PO_XGETTEXT_ARGS+=(--package-version="$version")
po_xgettext po/safecad.pot "${sources[@]}"
echo "po/safecad.pot: $(grep -c '^msgid ' po/safecad.pot) entries (with the header)"

for language in $(po_list po/LINGUAS); do
	msgmerge --quiet --update --backup=none --previous "po/$language.po" po/safecad.pot
	msgattrib --no-obsolete -o "po/$language.po" "po/$language.po"
	echo "po/$language.po: $(msgfmt --statistics -o /dev/null "po/$language.po" 2>&1)"
done
