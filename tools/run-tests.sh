#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds safecad with AddressSanitizer and UndefinedBehaviorSanitizer and
# runs every test suite: the unit tests (cmocka), the fuzz corpora, the
# integration tests (pytest, on a private bus, SoftHSM, pcscd with vpcd),
# and last the Debian packages (built, linted, installed, run, purged).
# Installs the Debian packages it needs first. The last line is the total.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${SAFECAD_BUILD_DIR:-$top/build-test}

bash tools/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

export LSAN_OPTIONS="suppressions=$top/tests/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Dbuildtype=debug -Db_sanitize=address,undefined \
    -Db_lundef=false -Dwerror=true -Dfuzz=true || { echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$build"; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# Unit tests and fuzz corpora (meson), then the integration tests (pytest).
meson test -C "$build" --print-errorlogs --no-rebuild --num-processes 2
SAFECAD_BUILD_DIR="$build" /usr/bin/python3 -m pytest "$top/tests/integration" \
  -q -p no:cacheprovider --junitxml="$build/pytest.xml"
# Last, and on its own: it installs and purges the Debian packages.
SAFECAD_PACKAGE_TESTS=1 /usr/bin/python3 -m pytest "$top/tests/packaging" \
  -q -p no:cacheprovider --junitxml="$build/packaging.xml"

/usr/bin/python3 - "$build" <<'PY'
import json, sys, xml.etree.ElementTree as ET
build = sys.argv[1]
passed = failed = skipped = 0
try:
    with open(f"{build}/meson-logs/testlog.json") as f:
        for line in f:
            result = json.loads(line).get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
except FileNotFoundError:
    failed += 1
for report in ("pytest.xml", "packaging.xml"):
    try:
        root = ET.parse(f"{build}/{report}").getroot()
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            f = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            s = int(suite.get("skipped", 0))
            passed += tests - f - s
            failed += f
            skipped += s
    except (FileNotFoundError, ET.ParseError):
        failed += 1
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)
PY
