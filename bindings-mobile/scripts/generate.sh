#!/usr/bin/env bash
# Builds the fundcore-mobile cdylib (debug, host) and generates the Kotlin (package com.fundcore)
# and Swift (module FundCore) sources from it into bindings-mobile/generated/ (gitignored).
#
#   bindings-mobile/generated/kotlin/com/fundcore/fundcore_mobile.kt
#   bindings-mobile/generated/swift/FundCore.swift, FundCoreFFI.h, FundCoreFFI.modulemap
#
# The generated sources do not depend on the target platform: the same files serve Android,
# the JVM, iOS and macOS; only the compiled library differs.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO="${CARGO:-cargo}"
OUT=bindings-mobile/generated
TARGET="${CARGO_TARGET_DIR:-target}"
LIB="$TARGET/debug/libfundcore_mobile.so"

"$CARGO" build -p fundcore-mobile
rm -rf "$OUT/kotlin" "$OUT/swift"
mkdir -p "$OUT/kotlin" "$OUT/swift"
BINDGEN="$TARGET/debug/uniffi-bindgen"
"$BINDGEN" generate --no-format --library "$LIB" --language kotlin --out-dir "$OUT/kotlin"
"$BINDGEN" generate --no-format --library "$LIB" --language swift --out-dir "$OUT/swift"
find "$OUT" -type f | sort
