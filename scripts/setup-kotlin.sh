#!/usr/bin/env bash
# Installs what the Kotlin (JVM) tests of the mobile bindings need, project-locally where possible:
#   - the Kotlin compiler from the npm package `kotlin-compiler` into build/tools/ (it compiles
#     the tests and the quickstart against the built artifact)
#   - Maven (Debian's `maven`), which builds the artifact com.fundcore:fundcore and resolves its
#     dependencies (kotlin-stdlib, JNA) from Maven Central into ~/.m2 on first use
# OpenJDK 17 (java, javac) is expected on the machine. Idempotent: a no-op when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

KOTLIN_VERSION="${KOTLIN_VERSION:-2.4.20}"
TOOLS=build/tools
KOTLIN_HOME="$TOOLS/node_modules/kotlin-compiler"

for tool in java javac; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "setup-kotlin: $tool not found (OpenJDK 17 is required)" >&2
    exit 1
  fi
done

installed=""
if [ -f "$KOTLIN_HOME/build.txt" ]; then installed="$(tr -d '[:space:]' < "$KOTLIN_HOME/build.txt")"; fi
if [ "$installed" != "$KOTLIN_VERSION" ] || [ ! -x "$KOTLIN_HOME/bin/kotlinc" ]; then
  echo "setup-kotlin: installing kotlin-compiler@$KOTLIN_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "kotlin-compiler@$KOTLIN_VERSION"
fi

if ! command -v mvn >/dev/null 2>&1; then
  echo "setup-kotlin: installing maven"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq maven
fi

echo "setup-kotlin: kotlinc $(tr -d '[:space:]' < "$KOTLIN_HOME/build.txt"), $(mvn -v 2>/dev/null | sed -n 's/\x1b\[[0-9;]*m//g; 1p')"
