#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs every Debian 12 package that building, testing and the demo need.
# Safe to run again; skips apt when everything is already present.
set -euo pipefail

packages=(
  # build
  gcc meson ninja-build pkg-config clang-format
  libsystemd-dev libssl-dev libpcsclite-dev libp11-dev
  libcurl4-openssl-dev libjansson-dev libinih-dev libcmocka-dev libp11-kit-dev
  # the token, hotplug and independent checkers
  softhsm2 p11-kit opensc pcscd vsmartcard-vpcd libengine-pkcs11-openssl openssl
  # a CAC card that only signs, for OpenSC's stock config (tests/cards)
  libcacard-dev libnss3-tools
  # bus, polkit mock and the Python test harness
  dbus python3 python3-pytest python3-dbusmock python3-dbus python3-gi
  python3-cryptography util-linux procps
  # the IsoApplet card test reads PIN flags and attributes through PyKCS11
  python3-pykcs11
  # the benchmark's peer
  certmonger
  # the independent CMP peer: a responder on Bouncy Castle's CMP classes
  default-jdk-headless libbcpkix-java libbcprov-java libbcutil-java
  # system integration: man pages, the .pc files and DTDs the install and its
  # tests use, the tools that check each file (systemd-analyze comes with
  # systemd, node with the machine)
  scdoc libdbus-1-dev bash-completion polkitd libxml2-utils desktop-file-utils
  systemd man-db
  # the desktop agent: translations, a notification server on a virtual X
  # display, screenshots, and a locale to show Vietnamese
  gettext dunst xvfb imagemagick xdotool libnotify-bin fonts-dejavu-core
  locales x11-utils
  # promtool, which checks the metrics textfile as Prometheus reads it
  prometheus
  # the Debian packages: built, checked, installed and purged by the tests
  debhelper lintian dpkg-dev git
  # the Token Manager window (GTK 4, libadwaita), the checkers of its desktop
  # file and AppStream metainfo, and what its tests drive it with: the
  # AT-SPI bus and pyatspi, Mesa's software GL
  libgtk-4-dev libadwaita-1-dev appstream at-spi2-core python3-pyatspi
  gir1.2-atspi-2.0 libgl1-mesa-dri
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
