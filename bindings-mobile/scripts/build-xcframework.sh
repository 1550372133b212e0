#!/usr/bin/env bash
# Builds the Apple artefacts of fundcore-mobile: FundCoreFFI.xcframework (static libraries for
# iOS devices, the iOS simulator and macOS, with the C header and module map) and the Swift
# sources of module FundCore, laid out as the Swift package in bindings-mobile/apple/.
#
# Runs on a Mac only (Xcode 15+ command line tools, rustup). It cannot run on the Linux
# machines of this project, where Swift is generated and checked but not compiled.
#
#   bindings-mobile/scripts/build-xcframework.sh            # release build
#
# Output:
#   bindings-mobile/apple/FundCoreFFI.xcframework
#   bindings-mobile/apple/Sources/FundCore/FundCore.swift
# Then bindings-mobile/scripts/package-xcframework.sh zips the XCFramework for a release and
# writes its checksum into Package.swift (whose binaryTarget downloads the release); to try the
# local XCFramework instead, point the binaryTarget at `path: "FundCoreFFI.xcframework"`.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(uname -s)" != Darwin ]; then
  echo "build-xcframework: needs macOS with Xcode (xcodebuild, lipo)" >&2
  exit 1
fi

IOS=aarch64-apple-ios
SIM_ARM=aarch64-apple-ios-sim
SIM_X86=x86_64-apple-ios
MAC_ARM=aarch64-apple-darwin
MAC_X86=x86_64-apple-darwin
TARGETS=("$IOS" "$SIM_ARM" "$SIM_X86" "$MAC_ARM" "$MAC_X86")
APPLE=bindings-mobile/apple
WORK=build/apple
LIBNAME=libfundcore_mobile.a
T="${CARGO_TARGET_DIR:-target}"

rustup target add "${TARGETS[@]}"
# The crate's own crate-types are cdylib + lib; Apple apps link a static library instead.
for t in "${TARGETS[@]}"; do
  cargo rustc -p fundcore-mobile --lib --release --target "$t" --crate-type staticlib
done

# Swift sources and C header, generated from the host build (identical for every target).
cargo build -p fundcore-mobile
rm -rf "$WORK" && mkdir -p "$WORK/gen" "$WORK/headers" "$WORK/ios-sim" "$WORK/macos"
"$T/debug/uniffi-bindgen" generate --no-format --library "$T/debug/libfundcore_mobile.dylib" \
  --language swift --out-dir "$WORK/gen"
cp "$WORK/gen/FundCoreFFI.h" "$WORK/headers/"
# An xcframework's headers directory wants the module map under this exact name.
cp "$WORK/gen/FundCoreFFI.modulemap" "$WORK/headers/module.modulemap"

# One fat library per platform: the simulator and macOS come in two architectures.
lipo -create "$T/$SIM_ARM/release/$LIBNAME" "$T/$SIM_X86/release/$LIBNAME" -output "$WORK/ios-sim/$LIBNAME"
lipo -create "$T/$MAC_ARM/release/$LIBNAME" "$T/$MAC_X86/release/$LIBNAME" -output "$WORK/macos/$LIBNAME"

rm -rf "$APPLE/FundCoreFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$T/$IOS/release/$LIBNAME" -headers "$WORK/headers" \
  -library "$WORK/ios-sim/$LIBNAME" -headers "$WORK/headers" \
  -library "$WORK/macos/$LIBNAME" -headers "$WORK/headers" \
  -output "$APPLE/FundCoreFFI.xcframework"

mkdir -p "$APPLE/Sources/FundCore"
cp "$WORK/gen/FundCore.swift" "$APPLE/Sources/FundCore/FundCore.swift"
echo "build-xcframework: $APPLE/FundCoreFFI.xcframework and $APPLE/Sources/FundCore/FundCore.swift"
echo "next: bindings-mobile/scripts/package-xcframework.sh (release zip and checksum)"
