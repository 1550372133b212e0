#!/usr/bin/env bash
# Zips FundCoreFFI.xcframework for a release and writes the zip's checksum into Package.swift.
# SwiftPM checks a remote binaryTarget against `checksum:`, the SHA-256 of the zip (what
# `swift package compute-checksum` prints), so the Package.swift of a release must name the
# exact zip uploaded. The URL's version is set to the crate's (v<version> in the release URL).
#
# On a Mac, after build-xcframework.sh:
#   bindings-mobile/scripts/package-xcframework.sh
# then upload build/apple/FundCoreFFI.xcframework.zip to the release v<version> and commit
# Package.swift. Runs anywhere with zip (or ditto) and shasum/sha256sum: `make test-swift`
# exercises it on a dummy XCFramework.
#
#   usage: package-xcframework.sh [xcframework dir] [Package.swift] [output dir]
#   defaults: bindings-mobile/apple/FundCoreFFI.xcframework, bindings-mobile/apple/Package.swift,
#             build/apple
#   prints: the zip's path and checksum
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"

XCF="${1:-$ROOT/bindings-mobile/apple/FundCoreFFI.xcframework}"
MANIFEST="${2:-$ROOT/bindings-mobile/apple/Package.swift}"
OUT_DIR="${3:-$ROOT/build/apple}"
NAME="$(basename "$XCF")"

[ "$NAME" = FundCoreFFI.xcframework ] || { echo "package-xcframework: $XCF is not a FundCoreFFI.xcframework" >&2; exit 1; }
[ -f "$XCF/Info.plist" ] || { echo "package-xcframework: $XCF/Info.plist missing (run build-xcframework.sh on a Mac)" >&2; exit 1; }
[ -f "$MANIFEST" ] || { echo "package-xcframework: $MANIFEST missing" >&2; exit 1; }
grep -q 'checksum: "[0-9a-f]*"' "$MANIFEST" || { echo "package-xcframework: no checksum: \"...\" in $MANIFEST" >&2; exit 1; }
grep -q 'url: "https://[^"]*/v[^/"]*/FundCoreFFI\.xcframework\.zip"' "$MANIFEST" ||
  { echo "package-xcframework: no release url: \"https://.../v<version>/FundCoreFFI.xcframework.zip\" in $MANIFEST" >&2; exit 1; }
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"
[ -n "$VERSION" ] || { echo "package-xcframework: no workspace version in Cargo.toml" >&2; exit 1; }

mkdir -p "$OUT_DIR"
ZIP="$(cd "$OUT_DIR" && pwd)/$NAME.zip"
rm -f "$ZIP"
# The zip holds the directory itself (FundCoreFFI.xcframework/...), symbolic links kept as links
# (macOS framework bundles use them), without the Finder's extra attributes.
if command -v ditto >/dev/null 2>&1; then
  ditto -c -k --sequesterRsrc --keepParent "$XCF" "$ZIP"
else
  (cd "$(dirname "$XCF")" && zip -q -r -y -X "$ZIP" "$NAME")
fi

if command -v sha256sum >/dev/null 2>&1; then
  CHECKSUM="$(sha256sum "$ZIP" | cut -d' ' -f1)"
else
  CHECKSUM="$(shasum -a 256 "$ZIP" | cut -d' ' -f1)"
fi

# Only the checksum and the version of the URL change; the rest of the manifest is kept.
TMP="$(mktemp)"
trap 'rm -f "$TMP"' EXIT
sed -e "s/checksum: \"[0-9a-f]*\"/checksum: \"$CHECKSUM\"/" \
    -e "s#\(url: \"https://[^\"]*/\)v[^/\"]*\(/FundCoreFFI\.xcframework\.zip\"\)#\1v$VERSION\2#" \
    "$MANIFEST" > "$TMP"
cat "$TMP" > "$MANIFEST"
echo "package-xcframework: $ZIP"
echo "package-xcframework: checksum $CHECKSUM written into $MANIFEST (v$VERSION)"
