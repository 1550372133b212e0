#!/usr/bin/env bash
# Builds fundcore-mobile for Android with cargo-ndk and lays out what an Android module needs:
# an app module, or a library module whose `assembleRelease` makes the AAR (see
# bindings-mobile/README.md). Not run on this project's machines (no Android NDK).
#
#   ANDROID_NDK_HOME=/path/to/ndk bindings-mobile/scripts/build-android.sh <module dir>
#
# Needs: rustup, `cargo install cargo-ndk`, an Android NDK (r26 or later).
# Output, in <module dir> (e.g. fundcore/ or app/):
#   src/main/jniLibs/{arm64-v8a,armeabi-v7a,x86_64,x86}/libfundcore_mobile.so
#   src/main/java/com/fundcore/fundcore_mobile.kt      (generated bindings, Android flavour)
#   src/main/java/com/fundcore/FundExceptionExt.kt     (code/reason accessors)
#   src/main/java/com/fundcore/JavaNotifier.kt         (a notifier Java code can extend)
#   fundcore-rules.pro                                 (R8 rules: consumerProguardFiles of a
#                                                       library module, proguardFiles of an app)
set -euo pipefail
MODULE="$(cd "${1:?usage: build-android.sh <module dir>}" && pwd)"
cd "$(dirname "$0")/../.."
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the NDK directory}"

# The minSdk of the bindings (java.time needs API 26); the libraries link against that API level.
MIN_SDK=26
JNILIBS="$MODULE/src/main/jniLibs"

rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android
# .cargo/config.toml links the *-linux-android targets for 16 KB pages (Android 15+ devices).
cargo ndk -P "$MIN_SDK" -t arm64-v8a -t armeabi-v7a -t x86_64 -t x86 -o "$JNILIBS" \
  build -p fundcore-mobile --release

# 16 KB pages exist on 64-bit devices: every LOAD segment of those libraries must be aligned.
readelfs=("$ANDROID_NDK_HOME"/toolchains/llvm/prebuilt/*/bin/llvm-readelf)
READELF=readelf
if [ -x "${readelfs[0]}" ]; then READELF="${readelfs[0]}"; fi
for abi in arm64-v8a x86_64; do
  lib="$JNILIBS/$abi/libfundcore_mobile.so"
  aligns="$("$READELF" -lW "$lib" | awk '$1 == "LOAD" { print $NF }')"
  [ -n "$aligns" ] || { echo "build-android: no LOAD segments read from $lib" >&2; exit 1; }
  for align in $aligns; do
    if [ $((align)) -lt 16384 ]; then
      echo "build-android: $lib has a LOAD segment aligned to $align, below 16 KB (is RUSTFLAGS set?)" >&2
      exit 1
    fi
  done
done

# The Kotlin sources are the same for every ABI: generate them from a host build. The Android
# flavour frees objects with android.system.SystemCleaner on API 34+.
bindings-mobile/scripts/generate.sh
mkdir -p "$MODULE/src/main/java/com/fundcore"
cp bindings-mobile/generated/kotlin-android/com/fundcore/fundcore_mobile.kt "$MODULE/src/main/java/com/fundcore/"
cp bindings-mobile/kotlin/com/fundcore/*.kt "$MODULE/src/main/java/com/fundcore/"
cp bindings-mobile/jvm/proguard/fundcore.pro "$MODULE/fundcore-rules.pro"
find "$JNILIBS" -name 'libfundcore_mobile.so'
echo "build-android: $MODULE ready (minSdk $MIN_SDK; dependencies: net.java.dev.jna:jna:5.19.1@aar, androidx.annotation:annotation)"
