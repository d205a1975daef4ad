#!/usr/bin/env bash
# Packs the PyInstaller-built nnstudio.app into a compressed disk image with an Applications link:
#     packaging/macos/make-dmg.sh [path/to/nnstudio.app] [output.dmg]
# Defaults: packaging/dist/pyinstaller/nnstudio.app -> packaging/dist/nnstudio-<version>-macos-<arch>.dmg
# Runs on macOS only (hdiutil); .github/workflows/package.yml runs it on macos-latest.
# NOT TESTED on the Linux machine where it was written.
#
# The app is ad-hoc signed (PyInstaller does that on Apple silicon). A release for other people's
# Macs needs a Developer ID: set NNSTUDIO_CODESIGN_IDENTITY (the spec signs with it), then notarize
# the .dmg (xcrun notarytool submit ... --wait; xcrun stapler staple ...). Without that, Gatekeeper
# asks users to open the app with right-click > Open the first time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version="$(sed -n 's/^__version__ *= *"\(.*\)"/\1/p' "$root/nnstudio/__init__.py")"
app="${1:-$root/packaging/dist/pyinstaller/nnstudio.app}"
dmg="${2:-$root/packaging/dist/nnstudio-${version}-macos-$(uname -m).dmg}"

[[ "$(uname -s)" == Darwin ]] || { echo "make-dmg.sh: needs macOS (hdiutil)" >&2; exit 1; }
[[ -d "$app" ]] || { echo "make-dmg.sh: no $app; build it first with PyInstaller (packaging/nnstudio.spec)" >&2; exit 1; }

staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
# ditto keeps the bundle's symlinks, extended attributes and code signature intact.
ditto "$app" "$staging/nnstudio.app"
ln -s /Applications "$staging/Applications"

codesign --verify --deep --strict "$staging/nnstudio.app" || echo "warning: the app's signature does not verify" >&2

rm -f "$dmg"
mkdir -p "$(dirname "$dmg")"
hdiutil create -volname "nnstudio $version" -srcfolder "$staging" -fs HFS+ -format UDZO \
    -imagekey zlib-level=9 -ov "$dmg"
hdiutil verify "$dmg"
echo "$dmg  $(du -h "$dmg" | cut -f1)"
