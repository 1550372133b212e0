#!/usr/bin/env bash
# Builds the JVM jar of the Kotlin bindings: the generated com.fundcore sources and the
# hand-written extensions, compiled with kotlinc, plus the host's native library as a JNA
# resource (linux-x86-64/libfundcore_mobile.so), so `java -cp fundcore-kotlin.jar:jna.jar:kotlin-stdlib.jar`
# finds it without -Djna.library.path.
#
#   usage: build-jar.sh [release]     (default: debug build, as used by the tests)
#   output: build/kotlin/fundcore-kotlin.jar
#
# Needs: scripts/setup-kotlin.sh (kotlinc, JNA) and scripts/generate.sh run first.
set -euo pipefail
cd "$(dirname "$0")/../.."

PROFILE="${1:-debug}"
KOTLIN_HOME=build/tools/node_modules/kotlin-compiler
JNA_JAR=/usr/share/java/jna.jar
OUT=build/kotlin
GEN=bindings-mobile/generated/kotlin/com/fundcore/fundcore_mobile.kt

if [ "$PROFILE" = release ]; then
  cargo build -p fundcore-mobile --release
fi
LIB="${CARGO_TARGET_DIR:-target}/$PROFILE/libfundcore_mobile.so"
[ -f "$GEN" ] || { echo "build-jar: run bindings-mobile/scripts/generate.sh first" >&2; exit 1; }
[ -f "$LIB" ] || { echo "build-jar: $LIB missing" >&2; exit 1; }

case "$(uname -m)" in
  x86_64) JNA_PREFIX=linux-x86-64 ;;
  aarch64) JNA_PREFIX=linux-aarch64 ;;
  *) JNA_PREFIX="linux-$(uname -m)" ;;
esac

mkdir -p "$OUT"
JAR="$OUT/fundcore-kotlin.jar"
# Skip the (slow) kotlinc run when sources and library are unchanged since the last build.
STAMP="$JAR.inputs"
INPUTS="$(cat "$GEN" bindings-mobile/kotlin/com/fundcore/*.kt "$LIB" | sha256sum | cut -d' ' -f1) $PROFILE"
if [ -f "$JAR" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$INPUTS" ]; then
  echo "build-jar: $JAR is up to date"
  exit 0
fi
rm -f "$STAMP"
"$KOTLIN_HOME/bin/kotlinc" -nowarn -cp "$JNA_JAR" -d "$JAR" "$GEN" bindings-mobile/kotlin/com/fundcore/*.kt
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/$JNA_PREFIX"
cp "$LIB" "$STAGE/$JNA_PREFIX/"
jar uf "$JAR" -C "$STAGE" "$JNA_PREFIX"
echo "$INPUTS" > "$STAMP"
echo "build-jar: $JAR ($JNA_PREFIX/libfundcore_mobile.so, $PROFILE)"
