#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The demo: installs what it needs, builds safecad, and runs a whole TH1
# renewal on SoftHSM, pcscd with a virtual reader, the reference CA and a
# private bus (tools/demo.py).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash tools/install-deps.sh
if [ ! -f build-demo/build.ninja ]; then
  meson setup build-demo -Dtests=false >/dev/null
fi
ninja -C build-demo >/dev/null
exec /usr/bin/python3 tools/demo.py --build-dir "$top/build-demo"
