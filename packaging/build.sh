#!/usr/bin/env bash
# Build the frozen one-folder app, its .tar.gz and the .deb, then install the .deb into a scratch
# root and run the installed copy's self-test offscreen with networking blocked.
#
#   bash packaging/build.sh            # on Debian/Ubuntu x86_64, from the repository root or not
#
# Uses .venv (made with the dev extra when missing). Everything goes under build/ (ignored by
# git): build/dist/meddiag-desktop (the folder), build/out/ (the packages, self-test line and
# build-report.json that tests/packaging/test_built_artifacts.py checks).
# MEDDIAG_GPU_BUILD=1 keeps onnxruntime's CUDA/TensorRT providers (packaging/README.md).
# MEDDIAG_DEB_INSTALL=real: install with apt-get (root), test /usr/bin/meddiag-desktop, remove.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BUILD=$REPO/build
OUT=$BUILD/out
PY=$REPO/.venv/bin/python
START=$(date +%s)
step() { echo "== $(date +%H:%M:%S) $*"; }
since() { echo $(( $(date +%s) - $1 )); }

if [ ! -x "$PY" ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet -e '.[dev]'
fi
"$PY" -c "import PyInstaller" 2>/dev/null || .venv/bin/pip install --quiet -e '.[dev]'
for tool in dpkg-deb fakeroot; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool is needed (apt-get install dpkg-dev fakeroot)" >&2; exit 2; }
done
VERSION=$("$PY" -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")
NAME=meddiag-desktop
rm -rf "$OUT" "$BUILD/deb" "$BUILD/scratch-root"
mkdir -p "$OUT" "$BUILD/logs"

step "wheel (the packaging tools' warnings must stay fixed)"
T=$(date +%s)
rm -rf "$BUILD/wheel"
.venv/bin/pip wheel --no-deps -v -w "$BUILD/wheel" . > "$BUILD/logs/wheel.log" 2>&1
if grep -E "SetuptoolsDeprecationWarning|SetuptoolsWarning" "$BUILD/logs/wheel.log"; then
    echo "build.sh: the wheel build printed the warnings above ($BUILD/logs/wheel.log)" >&2; exit 1
fi
WHEEL_S=$(since "$T")

step "third-party licences"
"$PY" packaging/collect_licenses.py "$BUILD/THIRD_PARTY_LICENSES"

step "PyInstaller one-folder build"
T=$(date +%s)
MEDDIAG_VERSION=$VERSION MEDDIAG_BUILD_DIR=$BUILD .venv/bin/pyinstaller --noconfirm --log-level WARN \
    --distpath "$BUILD/dist" --workpath "$BUILD/pyinstaller" packaging/meddiag-desktop.spec \
    2>&1 | tee "$BUILD/logs/pyinstaller.log" | grep -v "Ignoring icon" || true
FOLDER=$BUILD/dist/$NAME
[ -x "$FOLDER/$NAME" ] || { echo "build.sh: PyInstaller made no $FOLDER/$NAME" >&2; exit 1; }
FREEZE_S=$(since "$T")

step "tarball"
T=$(date +%s)
TARBALL=$OUT/$NAME-$VERSION-linux-x86_64.tar.gz
# S: rename members only, never the targets of symlinks (the meddiag -> meddiag-desktop link).
tar -C "$BUILD/dist" --transform "s,^$NAME,$NAME-$VERSION,S" -czf "$TARBALL" "$NAME"
TAR_S=$(since "$T")

step ".deb"
T=$(date +%s)
ROOT=$BUILD/deb/root
install -d "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications" \
    "$ROOT/usr/share/metainfo" "$ROOT/usr/share/doc/$NAME" "$ROOT/usr/share/icons/hicolor/scalable/apps"
cp -a "$FOLDER" "$ROOT/opt/$NAME"
install -m 755 packaging/linux/meddiag-desktop packaging/linux/meddiag "$ROOT/usr/bin/"
install -m 644 resources/meddiag-desktop.desktop "$ROOT/usr/share/applications/"
install -m 644 resources/io.github.meddiag.MedDiagDesktop.metainfo.xml "$ROOT/usr/share/metainfo/"
install -m 644 resources/icons/meddiag-desktop.svg "$ROOT/usr/share/icons/hicolor/scalable/apps/"
for png in resources/icons/meddiag-desktop-*.png; do
    size=${png##*-}; size=${size%.png}
    install -D -m 644 "$png" "$ROOT/usr/share/icons/hicolor/${size}x${size}/apps/$NAME.png"
done
install -m 644 packaging/linux/copyright "$ROOT/usr/share/doc/$NAME/copyright"
DEPENDS=$("$PY" packaging/deb_depends.py "$FOLDER")
SIZE_KB=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@INSTALLED_SIZE@/$SIZE_KB/" -e "s/@DEPENDS@/$DEPENDS/" \
    packaging/linux/control.in > "$ROOT/DEBIAN/control"
DEB=$OUT/${NAME}_${VERSION}_amd64.deb
fakeroot dpkg-deb --build -Zxz -z3 "$ROOT" "$DEB" >/dev/null
DEB_S=$(since "$T")
command -v desktop-file-validate >/dev/null && desktop-file-validate resources/meddiag-desktop.desktop
command -v appstreamcli >/dev/null && appstreamcli validate --no-net \
    resources/io.github.meddiag.MedDiagDesktop.metainfo.xml >/dev/null

step "install the .deb and self-test the installed copy, network blocked"
T=$(date +%s)
SCRATCH_HOME=$(mktemp -d)
# onnxruntime keeps its telemetry quiet under CI: look like a user's machine, so that a pass
# means the product switched it off (tests/offline/test_no_network.py does the same).
RUN_ENV=(env -u CI -u GITHUB_ACTIONS -u GITLAB_CI -u TF_BUILD -u JENKINS_URL -u BUILDKITE
         -u ORT_DISABLE_TELEMETRY HOME="$SCRATCH_HOME" XDG_CONFIG_HOME="$SCRATCH_HOME/.config"
         XDG_DATA_HOME="$SCRATCH_HOME/.local/share" QT_QPA_PLATFORM=offscreen)
if [ "${MEDDIAG_DEB_INSTALL:-scratch}" = real ]; then
    # apt-get resolves the Depends line from the Debian archive (a stale package list: update once).
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "$DEB" >/dev/null 2>"$BUILD/logs/apt.log" || {
        apt-get update -qq && apt-get install -y -qq "$DEB" >/dev/null; }
    INSTALLED=/usr/bin
else
    dpkg -x "$DEB" "$BUILD/scratch-root"
    INSTALLED=$BUILD/scratch-root/opt/$NAME
fi
if unshare -n true 2>/dev/null; then
    GUARD="unshare -n (no network namespace)"
    NET=(unshare -n)
elif command -v strace >/dev/null; then
    # No namespaces here: every connect fails (injected) and any attempt fails the build.
    GUARD="strace socket guard"
    NET=(strace -f -qq -o "$BUILD/logs/self-test-trace.txt" -e trace=%network
         -e inject=connect:error=ENETUNREACH)
else
    echo "build.sh: cannot block the network (neither unshare -n nor strace)" >&2; exit 2
fi
"${RUN_ENV[@]}" "${NET[@]}" "$INSTALLED/meddiag-desktop" --self-test \
    > "$OUT/self-test.txt" 2> "$BUILD/logs/self-test.stderr" || {
    cat "$BUILD/logs/self-test.stderr" >&2; echo "build.sh: the installed copy's self-test failed" >&2; exit 1; }
if [ -f "$BUILD/logs/self-test-trace.txt" ] && grep -E "AF_INET6?|sa_family=AF_INET" "$BUILD/logs/self-test-trace.txt"; then
    echo "build.sh: the self-test tried the network (above)" >&2; exit 1
fi
if [ -e "$SCRATCH_HOME/.cache/Microsoft" ]; then
    echo "build.sh: onnxruntime telemetry files appeared in $SCRATCH_HOME/.cache/Microsoft" >&2; exit 1
fi
"${RUN_ENV[@]}" "${NET[@]}" "$INSTALLED/meddiag" models list > "$OUT/models-list.txt"
SELFTEST_S=$(since "$T")
if [ "${MEDDIAG_DEB_INSTALL:-scratch}" = real ]; then apt-get remove -y -qq "$NAME" >/dev/null; fi
rm -rf "$SCRATCH_HOME"
cat "$OUT/self-test.txt"

FOLDER_MB=$(du -sm "$FOLDER" | cut -f1)
"$PY" - "$OUT/build-report.json" <<PYEOF
import json, os, sys
out = {
    "version": "$VERSION", "gpu_build": os.environ.get("MEDDIAG_GPU_BUILD") == "1",
    "network_guard": "$GUARD", "install": "${MEDDIAG_DEB_INSTALL:-scratch}",
    "folder_mb": $FOLDER_MB,
    "tarball": "$(basename "$TARBALL")", "tarball_mb": round(os.path.getsize("$TARBALL") / 2**20, 1),
    "deb": "$(basename "$DEB")", "deb_mb": round(os.path.getsize("$DEB") / 2**20, 1),
    "seconds": {"wheel": $WHEEL_S, "freeze": $FREEZE_S, "tarball": $TAR_S, "deb": $DEB_S,
                "install_and_self_test": $SELFTEST_S, "total": $(since "$START")},
    "self_test": open("$OUT/self-test.txt").read().strip(),
}
json.dump(out, open(sys.argv[1], "w"), indent=2)
print(json.dumps(out, indent=2))
PYEOF
