#!/usr/bin/env bash
# Builds the JVM artifact com.fundcore:fundcore with Maven (bindings-mobile/jvm/pom.xml): the jar
# (compiled bindings, the host's native library as the JNA resource linux-x86-64/..., consumer
# R8/ProGuard rules under META-INF/proguard/), the sources jar and the POM, installed into the
# local Maven repository (~/.m2) so that any Maven or Gradle build on this machine can use the
# coordinates. Then resolves, from those coordinates alone (bindings-mobile/tests/consumer/pom.xml),
# the classpath the tests run with: the installed jar, kotlin-stdlib and JNA as the POM declares.
#
#   usage: build-jar.sh [release]     (default: debug build, as used by the tests)
#   output: build/jvm/fundcore-<version>.jar, fundcore-<version>-sources.jar,
#           build/kotlin/classpath.txt (the consumer's runtime classpath)
#
# Needs: Maven and a JDK (scripts/setup-kotlin.sh checks them), scripts/generate.sh run first.
set -euo pipefail
cd "$(dirname "$0")/../.."

PROFILE="${1:-debug}"
POM=bindings-mobile/jvm/pom.xml
GEN=bindings-mobile/generated/kotlin/com/fundcore/fundcore_mobile.kt
OUT=build/jvm
CLASSPATH_FILE=build/kotlin/classpath.txt
M2="${MAVEN_REPO_LOCAL:-$HOME/.m2/repository}"

# The project's own version: the first <version> after the coordinates, a literal.
VERSION="$(sed -n '/<artifactId>fundcore<\/artifactId>/,/<version>/s:.*<version>\(.*\)</version>.*:\1:p' "$POM" | head -n1)"
[ -n "$VERSION" ] || { echo "build-jar: no <version> in $POM" >&2; exit 1; }
CRATE_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
[ "$VERSION" = "$CRATE_VERSION" ] || { echo "build-jar: $POM version $VERSION is not the crate version $CRATE_VERSION" >&2; exit 1; }

if [ "$PROFILE" = release ]; then
  cargo build -p fundcore-mobile --release
fi
LIB_DIR="${CARGO_TARGET_DIR:-target}/$PROFILE"
LIB="$LIB_DIR/libfundcore_mobile.so"
[ -f "$GEN" ] || { echo "build-jar: run bindings-mobile/scripts/generate.sh first" >&2; exit 1; }
[ -f "$LIB" ] || { echo "build-jar: $LIB missing" >&2; exit 1; }
if grep -q 'android\.os\.Build' "$GEN"; then
  echo "build-jar: $GEN is the Android flavour (android.os.Build): it cannot run on a plain JVM" >&2
  exit 1
fi

# JNA's resource prefix for this host (jna Platform.RESOURCE_PREFIX).
case "$(uname -m)" in
  x86_64) JNA_PREFIX=linux-x86-64 ;;
  aarch64) JNA_PREFIX=linux-aarch64 ;;
  *) JNA_PREFIX="linux-$(uname -m)" ;;
esac

# Maven 3.8 prints colour resets even with -B; the filter keeps its real output and exit status.
mvn_q() { mvn -q -B "$@" 2>&1 | sed 's/\x1b\[0m//g'; }

JAR="$OUT/fundcore-$VERSION.jar"
INSTALLED="$M2/com/fundcore/fundcore/$VERSION/fundcore-$VERSION.jar"
# Skip Maven's (slow) Kotlin compile when nothing it reads changed and the installed copy is ours.
STAMP="$OUT/inputs.sha256"
INPUTS="$(cat "$POM" bindings-mobile/jvm/proguard/*.pro "$GEN" bindings-mobile/kotlin/com/fundcore/*.kt "$LIB" \
  | sha256sum | cut -d' ' -f1) $PROFILE $JNA_PREFIX"
if [ -f "$JAR" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$INPUTS" ] && cmp -s "$JAR" "$INSTALLED"; then
  echo "build-jar: $JAR is up to date"
else
  rm -f "$STAMP"
  # Maven neither deletes the classes of removed sources nor copies a resource older than the
  # copy it made before (a debug library after a release one): start from no output.
  rm -rf "$OUT/classes"
  mvn_q -f "$POM" -Dfundcore.native.dir="$PWD/$LIB_DIR" -Dfundcore.native.prefix="$JNA_PREFIX" install
  echo "$INPUTS" > "$STAMP"
  echo "build-jar: $JAR, $(basename "$JAR" .jar)-sources.jar ($JNA_PREFIX/libfundcore_mobile.so, $PROFILE), installed as com.fundcore:fundcore:$VERSION"
fi

# The jar carries exactly the library of this build.
if ! unzip -p "$JAR" "$JNA_PREFIX/libfundcore_mobile.so" | cmp -s - "$LIB"; then
  echo "build-jar: $JAR does not carry $LIB as $JNA_PREFIX/libfundcore_mobile.so" >&2
  exit 1
fi

# The consumer's classpath, resolved from the coordinates; its fundcore jar must be this build.
mkdir -p "$(dirname "$CLASSPATH_FILE")"
mvn_q -f bindings-mobile/tests/consumer/pom.xml -Dfundcore.version="$VERSION" \
  dependency:build-classpath -Dmdep.includeScope=runtime -Dmdep.outputFile="$PWD/$CLASSPATH_FILE"
RESOLVED="$(tr ':' '\n' < "$CLASSPATH_FILE" | grep "/fundcore-$VERSION\.jar$" || true)"
if [ -z "$RESOLVED" ] || ! cmp -s "$RESOLVED" "$JAR"; then
  echo "build-jar: the consumer resolved '${RESOLVED:-no fundcore jar}', not the jar just built ($JAR)" >&2
  exit 1
fi
echo "build-jar: consumer classpath in $CLASSPATH_FILE: $(tr ':' '\n' < "$CLASSPATH_FILE" | xargs -n1 basename | paste -sd' ')"
