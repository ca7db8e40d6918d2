#!/usr/bin/env bash
# Build "MedDiag Desktop.app" and its .dmg on macOS; sign and notarize them when the identities
# are given. The macOS counterpart of packaging/build.sh.
#
# NOT BUILT OR RUN YET: the project's CI machines are Linux only. Whoever first runs this on a
# Mac fixes what breaks and updates packaging/README.md ("macOS").
#
#   bash packaging/macos/build.sh          # on macOS 12 or later, from anywhere
#
# Written for the bash 3.2 that macOS ships (no bash 4 features). Needs: Python 3.11 (python.org
# or Homebrew; MEDDIAG_PYTHON=/path/to/python3.11 to pick one), the Xcode command line tools
# (iconutil, codesign, hdiutil, xcrun notarytool, xcrun stapler). The app is built for this
# Mac's architecture (arm64 or x86_64): build once on each.
#
# Environment:
#   MEDDIAG_CODESIGN_IDENTITY  "Developer ID Application: NAME (TEAMID)" in the login keychain;
#                              unset: the app stays ad-hoc signed (runs here, not on other Macs
#                              without a Gatekeeper override) and notarization is skipped too
#   MEDDIAG_NOTARY_PROFILE     a profile stored with `xcrun notarytool store-credentials`;
#                              unset: notarization and stapling are skipped
#   MEDDIAG_GPU_BUILD          has no effect here: macOS uses the plain onnxruntime wheel (CPU,
#                              CoreML)
#
# Outputs under build/ (ignored by git):
#   build/meddiag-desktop.icns                       made here from resources/icons/*.png
#   build/dist/MedDiag Desktop.app
#   build/out/self-test.txt                          the .app's self-test line
#   build/out/meddiag-desktop-<version>-macos-<arch>.dmg
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BUILD=$REPO/build
OUT=$BUILD/out
PY=$REPO/.venv/bin/python
NAME=meddiag-desktop
APP_NAME="MedDiag Desktop"
START=$(date +%s)
step() { echo "== $(date +%H:%M:%S) $*"; }
die() { echo "macos/build.sh: $*" >&2; exit 1; }

[ "$(uname -s)" = Darwin ] || { echo "macos/build.sh: run this on macOS (Linux: packaging/build.sh)" >&2; exit 2; }
for tool in iconutil codesign hdiutil xcrun ditto; do
    command -v "$tool" >/dev/null || { echo "macos/build.sh: $tool is needed (xcode-select --install)" >&2; exit 2; }
done

# --- virtual environment ----------------------------------------------------------------------
if [ ! -x "$PY" ]; then
    step "virtual environment (.venv, with the dev extra)"
    "${MEDDIAG_PYTHON:-python3.11}" -m venv .venv
    .venv/bin/pip install --quiet -e '.[dev]'
fi
"$PY" -c "import PyInstaller" 2>/dev/null || .venv/bin/pip install --quiet -e '.[dev]'
VERSION=$("$PY" -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")
ARCH=$(uname -m)
step "MedDiag Desktop $VERSION ($ARCH)"
rm -rf "$OUT" "$BUILD/dmg" "$BUILD/meddiag-desktop.iconset"
mkdir -p "$OUT" "$BUILD/logs"

step "third-party licences"
"$PY" packaging/collect_licenses.py "$BUILD/THIRD_PARTY_LICENSES"

# --- the .icns the spec's BUNDLE names (build/meddiag-desktop.icns) ----------------------------
# packaging/render_icons.py writes the PNGs (16..512) and the .ico, not an .icns: iconutil packs
# one from an .iconset folder, whose names say the point size and @2x the double-density copy.
step "icon (.icns)"
ICONSET=$BUILD/meddiag-desktop.iconset
mkdir -p "$ICONSET"
PNG=resources/icons/meddiag-desktop
cp "$PNG-16.png"  "$ICONSET/icon_16x16.png"
cp "$PNG-32.png"  "$ICONSET/icon_16x16@2x.png"
cp "$PNG-32.png"  "$ICONSET/icon_32x32.png"
cp "$PNG-64.png"  "$ICONSET/icon_32x32@2x.png"
cp "$PNG-128.png" "$ICONSET/icon_128x128.png"
cp "$PNG-256.png" "$ICONSET/icon_128x128@2x.png"
cp "$PNG-256.png" "$ICONSET/icon_256x256.png"
cp "$PNG-512.png" "$ICONSET/icon_256x256@2x.png"
cp "$PNG-512.png" "$ICONSET/icon_512x512.png"
# 512@2x (1024 px) is not among the committed PNGs: drawn from the SVG with Qt's renderer, as
# render_icons.py draws the others; without it the .icns simply lacks that size.
QT_QPA_PLATFORM=offscreen "$PY" - "$ICONSET/icon_512x512@2x.png" <<'PYEOF' || echo "macos/build.sh: no 1024 px icon (the .icns goes without it)"
import sys
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

app = QGuiApplication(sys.argv[:1])
renderer = QSvgRenderer("resources/icons/meddiag-desktop.svg")
image = QImage(1024, 1024, QImage.Format.Format_ARGB32)
image.fill(Qt.GlobalColor.transparent)
painter = QPainter(image)
painter.setRenderHint(QPainter.RenderHint.Antialiasing)
renderer.render(painter)
painter.end()
sys.exit(0 if renderer.isValid() and image.save(sys.argv[1]) else 1)
PYEOF
iconutil -c icns -o "$BUILD/meddiag-desktop.icns" "$ICONSET"

# --- the frozen app ---------------------------------------------------------------------------
step "PyInstaller one-folder build and .app bundle"
MEDDIAG_VERSION=$VERSION MEDDIAG_BUILD_DIR=$BUILD .venv/bin/pyinstaller --noconfirm --log-level WARN \
    --distpath "$BUILD/dist" --workpath "$BUILD/pyinstaller" packaging/meddiag-desktop.spec \
    2>&1 | tee "$BUILD/logs/pyinstaller.log"
APP="$BUILD/dist/$APP_NAME.app"
BINARY="$APP/Contents/MacOS/$NAME"
[ -x "$BINARY" ] || die "PyInstaller made no $BINARY"
# The command line is the same program started as `meddiag` (packaging/entry_app.py). The spec
# links it in the one-folder build; make sure the .app has it too, before anything is signed.
if [ ! -e "$APP/Contents/MacOS/meddiag" ]; then
    ln -s "$NAME" "$APP/Contents/MacOS/meddiag"
    # A file added after PyInstaller's ad-hoc signature breaks the bundle's seal: seal it again
    # (ad hoc) for the unsigned build; a Developer ID signature below replaces it anyway.
    [ -n "${MEDDIAG_CODESIGN_IDENTITY:-}" ] || codesign --force --deep --sign - "$APP"
fi

# --- the self-test, offscreen, with the network denied where sandbox-exec exists ------------------
# sandbox-exec is deprecated by Apple but still ships; its profile here denies every network
# operation. Without it the self-test runs unguarded (said so).
self_test() {
    local scratch
    scratch=$(mktemp -d -t meddiag-self-test)
    local guard=(env)
    if command -v sandbox-exec >/dev/null; then
        guard=(sandbox-exec -p '(version 1) (allow default) (deny network*)')
        echo "network guard: sandbox-exec (deny network*)"
    else
        echo "network guard: NONE (no sandbox-exec); the self-test runs with the network open"
    fi
    env -u CI -u GITHUB_ACTIONS -u GITLAB_CI -u TF_BUILD -u JENKINS_URL -u BUILDKITE \
        -u ORT_DISABLE_TELEMETRY HOME="$scratch" QT_QPA_PLATFORM=offscreen \
        "${guard[@]}" "$BINARY" --self-test > "$OUT/self-test.txt" 2> "$BUILD/logs/self-test.stderr" || {
        cat "$BUILD/logs/self-test.stderr" >&2; rm -rf "$scratch"; die "the .app's self-test failed ($1)"; }
    if [ -n "$(find "$scratch" \( -name Microsoft -o -iname '*onnxruntime*' \) -print -quit)" ]; then
        find "$scratch" >&2; rm -rf "$scratch"; die "onnxruntime telemetry files appeared under the scratch HOME ($1)"
    fi
    rm -rf "$scratch"
    echo "self-test ($1): $(cat "$OUT/self-test.txt")"
}
step "self-test of the .app (as built)"
self_test "as built"

# --- signing (Developer ID, hardened runtime) -----------------------------------------------------
IDENTITY=${MEDDIAG_CODESIGN_IDENTITY:-}
ENTITLEMENTS=$REPO/packaging/macos/entitlements.plist
if [ -n "$IDENTITY" ]; then
    step "codesign with \"$IDENTITY\""
    # Inside out first: every Mach-O file that is not the main executable, so that no library
    # keeps PyInstaller's ad-hoc signature (the notary service rejects those; `--deep` alone
    # reaches only code in the places Apple's bundle layout names).
    find "$APP/Contents" -type f ! -path "$BINARY" -print0 | while IFS= read -r -d '' file; do
        if file -b "$file" | grep -q "Mach-O"; then
            codesign --force --options runtime --timestamp --sign "$IDENTITY" "$file"
        fi
    done
    codesign --force --deep --options runtime --timestamp --entitlements "$ENTITLEMENTS" \
        --sign "$IDENTITY" "$APP"
    codesign --verify --deep --strict --verbose=2 "$APP"
    codesign --display --entitlements - "$APP" > "$BUILD/logs/entitlements.txt" 2>&1
    step "self-test of the signed .app (hardened runtime)"
    self_test "signed"
else
    echo "codesign skipped: MEDDIAG_CODESIGN_IDENTITY is unset (the app keeps PyInstaller's ad-hoc signature)"
fi

# --- notarization ---------------------------------------------------------------------------------
PROFILE=${MEDDIAG_NOTARY_PROFILE:-}
notarize() {  # notarize FILE: submit, wait, fail with the notary's log unless Accepted
    local result id status
    # (|| true: an Invalid submission must still reach the log below.)
    result=$(xcrun notarytool submit "$1" --keychain-profile "$PROFILE" --wait --output-format json) || true
    echo "$result" > "$BUILD/logs/notary-$(basename "$1").json"
    read -r id status <<EOF_IDS
$("$PY" -c "
import json, sys
try:
    answer = json.loads(sys.argv[1])
except ValueError:
    answer = {}
print(answer.get('id') or '-', answer.get('status') or '-')
" "$result")
EOF_IDS
    if [ "$status" != Accepted ]; then
        echo "$result" >&2
        if [ "$id" != - ]; then xcrun notarytool log "$id" --keychain-profile "$PROFILE" >&2 || true; fi
        die "notarization of $1: status $status (the notary's log above; $BUILD/logs/)"
    fi
    echo "notarized: $1 ($id)"
}
NOTARIZE=no
if [ -n "$IDENTITY" ] && [ -n "$PROFILE" ]; then
    NOTARIZE=yes
    # The app itself gets its own ticket stapled: a workstation that stays offline cannot ask
    # Apple for the ticket when the app is first opened after being copied out of the .dmg.
    step "notarize and staple the .app"
    ditto -c -k --keepParent "$APP" "$BUILD/$NAME-notarize.zip"
    notarize "$BUILD/$NAME-notarize.zip"
    rm -f "$BUILD/$NAME-notarize.zip"
    xcrun stapler staple "$APP"
    xcrun stapler validate "$APP"
elif [ -z "$IDENTITY" ]; then
    echo "notarization skipped: the app is not signed (MEDDIAG_CODESIGN_IDENTITY is unset)"
else
    echo "notarization skipped: MEDDIAG_NOTARY_PROFILE is unset"
fi

# --- the .dmg -------------------------------------------------------------------------------------
step ".dmg"
DMG=$OUT/$NAME-$VERSION-macos-$ARCH.dmg
mkdir -p "$BUILD/dmg"
ditto "$APP" "$BUILD/dmg/$APP_NAME.app"
ln -s /Applications "$BUILD/dmg/Applications"
hdiutil create -volname "$APP_NAME $VERSION" -srcfolder "$BUILD/dmg" -ov -format UDZO "$DMG"
rm -rf "$BUILD/dmg"
if [ -n "$IDENTITY" ]; then
    codesign --force --timestamp --sign "$IDENTITY" "$DMG"
fi
if [ "$NOTARIZE" = yes ]; then
    step "notarize and staple the .dmg"
    notarize "$DMG"
    xcrun stapler staple "$DMG"
    xcrun stapler validate "$DMG"
    spctl --assess --type execute --verbose=2 "$APP"
    spctl --assess --type open --context context:primary-signature --verbose=2 "$DMG"
fi

echo "app: $APP ($(du -sm "$APP" | cut -f1) MB)"
echo "dmg: $DMG ($(du -sm "$DMG" | cut -f1) MB)"
echo "signed: ${IDENTITY:-no}; notarized: $NOTARIZE; total $(( $(date +%s) - START )) s"
cat "$OUT/self-test.txt"
