#!/usr/bin/env bash
# Installs what the Kotlin (JVM) tests of the mobile bindings need, project-locally where possible:
#   - the Kotlin compiler from the npm package `kotlin-compiler` into build/tools/
#   - JNA from Debian's `libjna-java` (/usr/share/java/jna.jar)
# OpenJDK 17 (java) is expected on the machine. Idempotent: a no-op when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

KOTLIN_VERSION="${KOTLIN_VERSION:-2.4.20}"
TOOLS=build/tools
KOTLIN_HOME="$TOOLS/node_modules/kotlin-compiler"
JNA_JAR=/usr/share/java/jna.jar

if ! command -v java >/dev/null 2>&1; then
  echo "setup-kotlin: java not found (OpenJDK 17 is required)" >&2
  exit 1
fi

installed=""
if [ -f "$KOTLIN_HOME/build.txt" ]; then installed="$(tr -d '[:space:]' < "$KOTLIN_HOME/build.txt")"; fi
if [ "$installed" != "$KOTLIN_VERSION" ] || [ ! -x "$KOTLIN_HOME/bin/kotlinc" ]; then
  echo "setup-kotlin: installing kotlin-compiler@$KOTLIN_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "kotlin-compiler@$KOTLIN_VERSION"
fi

if [ ! -f "$JNA_JAR" ]; then
  echo "setup-kotlin: installing libjna-java"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libjna-java
fi

echo "setup-kotlin: kotlinc $(tr -d '[:space:]' < "$KOTLIN_HOME/build.txt"), $(readlink -f "$JNA_JAR")"
