#!/usr/bin/env bash
# Builds fundcore-mobile for Android with cargo-ndk and lays out what an Android app module
# needs. Not run on this project's machines (no Android NDK); see bindings-mobile/README.md.
#
#   ANDROID_NDK_HOME=/path/to/ndk bindings-mobile/scripts/build-android.sh <app module dir>
#
# Needs: rustup, `cargo install cargo-ndk`, an Android NDK (r26 or later).
# Output, in <app module dir> (e.g. app/):
#   src/main/jniLibs/{arm64-v8a,armeabi-v7a,x86_64,x86}/libfundcore_mobile.so
#   src/main/java/com/fundcore/fundcore_mobile.kt      (generated bindings)
#   src/main/java/com/fundcore/FundExceptionExt.kt     (code/reason accessors)
#   src/main/java/com/fundcore/JavaNotifier.kt         (a notifier Java code can extend)
set -euo pipefail
APP="$(cd "${1:?usage: build-android.sh <app module dir>}" && pwd)"
cd "$(dirname "$0")/../.."
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the NDK directory}"

rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -t x86 -o "$APP/src/main/jniLibs" \
  build -p fundcore-mobile --release

# The Kotlin sources are the same for every platform: generate them from a host build.
bindings-mobile/scripts/generate.sh
mkdir -p "$APP/src/main/java/com/fundcore"
cp bindings-mobile/generated/kotlin/com/fundcore/fundcore_mobile.kt "$APP/src/main/java/com/fundcore/"
cp bindings-mobile/kotlin/com/fundcore/*.kt "$APP/src/main/java/com/fundcore/"
find "$APP/src/main/jniLibs" -name 'libfundcore_mobile.so'
