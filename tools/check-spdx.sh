#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every source file we write says its licence on one of its first lines
# (COPYING holds the text): C, Python, shell and meson files, as git
# tracks them.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=0
while IFS= read -r -d '' file; do
	if ! head -n 3 "$file" | grep -q 'SPDX-License-Identifier: LGPL-2.1-or-later'; then
		echo "no SPDX-License-Identifier line: $file"
		missing=$((missing + 1))
	fi
done < <(git ls-files -z -- '*.c' '*.h' '*.py' '*.sh' '*meson.build' 'tests/integration/harness/fake-*' 'tests/integration/harness/fake-bin/*' 'tests/integration/harness/atspi-driver')
if [ "$missing" -gt 0 ]; then
	echo "FAIL: $missing file(s) without an SPDX line"
	exit 1
fi
echo "Every source file carries its SPDX line."
