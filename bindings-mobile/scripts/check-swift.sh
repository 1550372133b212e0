#!/usr/bin/env bash
# What can be checked of the Swift package without a Swift toolchain (none on these machines):
#   1. the generated C header FundCoreFFI.h compiles as C (clang when present; with GCC the
#      clang-only nullability qualifiers _Nonnull/_Nullable are defined away);
#   2. the built library exports every function the header declares (`nm -D --defined-only`):
#      a declaration without its symbol is a link error in every app. A self-test first shows
#      the check failing on a copy of the header with a made-up function;
#   3. package-xcframework.sh, run on a dummy FundCoreFFI.xcframework and a copy of
#      Package.swift, writes the SHA-256 of the zip it made (checked with sha256sum) and the
#      crate's version into the release URL, and changes nothing else.
#
#   usage: check-swift.sh [header] [library]
#   defaults: bindings-mobile/generated/swift/FundCoreFFI.h, target/debug/libfundcore_mobile.so
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

HEADER="${1:-bindings-mobile/generated/swift/FundCoreFFI.h}"
LIB="${2:-${CARGO_TARGET_DIR:-target}/debug/libfundcore_mobile.so}"
[ -f "$HEADER" ] || { echo "check-swift: $HEADER missing (make mobile-generate)" >&2; exit 1; }
[ -f "$LIB" ] || { echo "check-swift: $LIB missing (make mobile-generate)" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# --- 1. the header compiles
if command -v clang >/dev/null 2>&1; then
  CC_CMD=(clang -Wno-nullability-completeness)
else
  CC_CMD=("${CC:-cc}" -D_Nonnull= -D_Nullable= -D_Null_unspecified=)
fi
# Included (as the module map does; `#pragma once` warns in a main file), twice: the guards
# must make the second inclusion a no-op.
printf '#include "%s"\n#include "%s"\n' "$(realpath "$HEADER")" "$(realpath "$HEADER")" > "$WORK/twice.c"
"${CC_CMD[@]}" -fsyntax-only -x c -std=c11 -Wall -Wextra -Werror "$WORK/twice.c"
echo "check-swift: $HEADER compiles as C11 with ${CC_CMD[0]} (-Wall -Wextra -Werror, included twice)"

# --- 2. every declared function is exported
nm -D --defined-only "$LIB" | awk '$2 == "T" { print $3 }' | sort -u > "$WORK/exported"
missing_exports() { # declared functions file: prints those the library does not define
  comm -23 <(sort -u "$1") "$WORK/exported"
}
python3 bindings-mobile/scripts/ffi_functions.py "$HEADER" > "$WORK/declared"
missing="$(missing_exports "$WORK/declared")"
if [ -n "$missing" ]; then
  echo "check-swift: declared in $HEADER but not exported by $LIB:" >&2
  echo "$missing" >&2
  exit 1
fi
cp "$HEADER" "$WORK/FundCoreFFI.h"
printf '#ifndef UNIFFI_FFIDEF_MADE_UP\n#define UNIFFI_FFIDEF_MADE_UP\nvoid uniffi_fundcore_mobile_fn_func_made_up(RustCallStatus *_Nonnull out_status\n);\n#endif\n' \
  >> "$WORK/FundCoreFFI.h"
python3 bindings-mobile/scripts/ffi_functions.py "$WORK/FundCoreFFI.h" > "$WORK/declared-made-up"
if [ "$(missing_exports "$WORK/declared-made-up")" != uniffi_fundcore_mobile_fn_func_made_up ]; then
  echo "check-swift: self-test failed: a made-up function in the header was not reported as missing" >&2
  exit 1
fi
echo "check-swift: $LIB exports all $(wc -l < "$WORK/declared") functions of $HEADER (a made-up one is reported)"

# --- 3. zip and checksum of a (dummy) XCFramework
XCF="$WORK/in/FundCoreFFI.xcframework"
mkdir -p "$XCF/ios-arm64/Headers" "$XCF/macos-arm64_x86_64"
printf '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict/></plist>\n' > "$XCF/Info.plist"
head -c 4096 /dev/urandom > "$XCF/ios-arm64/libfundcore_mobile.a"
cp "$HEADER" "$XCF/ios-arm64/Headers/"
ln -s ../ios-arm64/Headers "$XCF/macos-arm64_x86_64/Headers"
cp bindings-mobile/apple/Package.swift "$WORK/Package.swift"
sed -i 's#/v[^/"]*/FundCoreFFI\.xcframework\.zip"#/v0.0.0-old/FundCoreFFI.xcframework.zip"#' "$WORK/Package.swift"
bindings-mobile/scripts/package-xcframework.sh "$XCF" "$WORK/Package.swift" "$WORK/out" > "$WORK/package.log"
ZIP="$WORK/out/FundCoreFFI.xcframework.zip"
[ -f "$ZIP" ] || { echo "check-swift: package-xcframework.sh wrote no $ZIP" >&2; exit 1; }
sum="$(sha256sum "$ZIP" | cut -d' ' -f1)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
grep -qF "checksum: \"$sum\"" "$WORK/Package.swift" ||
  { echo "check-swift: the Package.swift written does not name the zip's SHA-256 $sum" >&2; exit 1; }
grep -qF "/releases/download/v$version/FundCoreFFI.xcframework.zip\"" "$WORK/Package.swift" ||
  { echo "check-swift: the Package.swift written does not download v$version" >&2; exit 1; }
changed="$(diff bindings-mobile/apple/Package.swift "$WORK/Package.swift" | grep -c '^>' || true)"
[ "$changed" -le 2 ] || { echo "check-swift: package-xcframework.sh changed $changed lines of Package.swift (the checksum and the URL only)" >&2; exit 1; }
# The zip holds the directory itself, the symbolic link kept as a link, and no other top folder.
listing="$(unzip -Z1 "$ZIP")"
grep -qx 'FundCoreFFI.xcframework/Info.plist' <<<"$listing" ||
  { echo "check-swift: $ZIP has no FundCoreFFI.xcframework/Info.plist" >&2; exit 1; }
if grep -qv '^FundCoreFFI\.xcframework/' <<<"$listing"; then
  echo "check-swift: $ZIP holds entries outside FundCoreFFI.xcframework/" >&2; exit 1
fi
unzip -q "$ZIP" -d "$WORK/unzipped"
[ -L "$WORK/unzipped/FundCoreFFI.xcframework/macos-arm64_x86_64/Headers" ] ||
  { echo "check-swift: $ZIP did not keep the symbolic link as a link" >&2; exit 1; }
cmp -s "$XCF/ios-arm64/libfundcore_mobile.a" "$WORK/unzipped/FundCoreFFI.xcframework/ios-arm64/libfundcore_mobile.a" ||
  { echo "check-swift: $ZIP does not hold the library as it was" >&2; exit 1; }
# A directory that is not an XCFramework is refused, and the manifest left as it was.
mkdir -p "$WORK/bad/FundCoreFFI.xcframework"
cp "$WORK/Package.swift" "$WORK/Package.before"
if bindings-mobile/scripts/package-xcframework.sh "$WORK/bad/FundCoreFFI.xcframework" "$WORK/Package.swift" "$WORK/out" 2>/dev/null; then
  echo "check-swift: package-xcframework.sh accepted a directory without Info.plist" >&2; exit 1
fi
cmp -s "$WORK/Package.swift" "$WORK/Package.before" || { echo "check-swift: a refused run changed Package.swift" >&2; exit 1; }
echo "check-swift: package-xcframework.sh on a dummy XCFramework: Package.swift names the zip's SHA-256 ($sum) and v$version"
