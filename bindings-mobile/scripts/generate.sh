#!/usr/bin/env bash
# Builds the fundcore-mobile cdylib (debug, host) and generates the Kotlin (package com.fundcore)
# and Swift (module FundCore) sources from it into bindings-mobile/generated/ (gitignored).
#
#   bindings-mobile/generated/kotlin/com/fundcore/fundcore_mobile.kt          JVM flavour
#   bindings-mobile/generated/kotlin-android/com/fundcore/fundcore_mobile.kt  Android flavour
#   bindings-mobile/generated/swift/FundCore.swift, FundCoreFFI.h, FundCoreFFI.modulemap
#
# The two Kotlin flavours differ only in how objects are freed: the Android one
# (bindings-mobile/uniffi.toml, android_cleaner) uses android.system.SystemCleaner, which a plain
# JVM does not have; the JVM one (jvm/uniffi-jvm.toml on top) uses java.lang.ref.Cleaner.
# Neither depends on the target's architecture: one build serves every ABI; only the compiled
# library differs.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO="${CARGO:-cargo}"
OUT=bindings-mobile/generated
TARGET="${CARGO_TARGET_DIR:-target}"
LIB="$TARGET/debug/libfundcore_mobile.so"

"$CARGO" build -p fundcore-mobile
rm -rf "$OUT/kotlin" "$OUT/kotlin-android" "$OUT/swift"
mkdir -p "$OUT/kotlin" "$OUT/kotlin-android" "$OUT/swift"
BINDGEN="$TARGET/debug/uniffi-bindgen"
"$BINDGEN" generate --no-format --library "$LIB" --language kotlin --out-dir "$OUT/kotlin-android"
"$BINDGEN" generate --no-format --library "$LIB" --language kotlin --out-dir "$OUT/kotlin" \
  --config bindings-mobile/jvm/uniffi-jvm.toml
"$BINDGEN" generate --no-format --library "$LIB" --language swift --out-dir "$OUT/swift"
find "$OUT" -type f | sort
