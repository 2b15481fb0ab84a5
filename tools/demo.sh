#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The demo: installs what it needs, builds safecad, and runs a whole TH1
# renewal on SoftHSM, pcscd with a virtual reader, the reference CA and a
# private bus (tools/demo.py). With --card, on an IsoApplet smart card
# through OpenSC instead of SoftHSM.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: tools/demo.sh [--card]

Installs what the demo needs (tools/install-deps.sh), builds safecad in
build-demo/ and runs a whole TH1 renewal in a private world: a private
system bus, pcscd with the vpcd virtual reader, the reference CA with a
renewal waiting, and the daemon. Exits 0 only if the renewal worked and its
result was read back from the token.

  --card   the token is an IsoApplet smart card (an emulator in vpcd's
           reader) reached through OpenSC's opensc-pkcs11.so, not SoftHSM:
           the new RSA-2048 key is made on the card, and pkcs11-tool,
           pkcs15-tool and openssl verify read the result back through OpenSC
  -h, --help
           this text
USAGE
}

demo_args=()
for arg in "$@"; do
  case "$arg" in
    --card) demo_args+=(--card) ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "demo.sh: unknown argument: $arg" >&2
      usage >&2
      exit 2
      ;;
  esac
done

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash tools/install-deps.sh
if [ ! -f build-demo/build.ninja ]; then
  meson setup build-demo -Dtests=false >/dev/null
fi
ninja -C build-demo >/dev/null
exec /usr/bin/python3 tools/demo.py --build-dir "$top/build-demo" "${demo_args[@]}"
