#!/usr/bin/env bash
# Checks the consumer R8/ProGuard rules the jar ships (META-INF/proguard/*.pro): ProGuard shrinks,
# optimizes and obfuscates the Java program (tests/java/JavaInterop.java, compiled by
# `make test-java`) together with the consumer's whole classpath (fundcore, kotlin-stdlib, JNA),
# as an Android app's release build does with R8, keeping only the program's main and what the
# shipped rules keep; then the shrunk program runs against the native library. A rule missing for
# something JNA reaches by reflection or by name fails the run (a Structure laid out without its
# field names, a native method renamed away from its symbol, JNA's own fields renamed).
# ProGuard reads the same rule language as R8; R8 itself (Google's Maven) is not run here.
#
#   usage: check-shrink.sh [classes dir]   (default: build/kotlin/java)
set -euo pipefail
cd "$(dirname "$0")/../.."

CLASSES="$(realpath "${1:-build/kotlin/java}")"
CP_FILE=build/kotlin/classpath.txt
[ -f "$CLASSES/JavaInterop.class" ] || { echo "check-shrink: $CLASSES/JavaInterop.class missing (make test-java)" >&2; exit 1; }
[ -s "$CP_FILE" ] || { echo "check-shrink: $CP_FILE missing (make kotlin-jar)" >&2; exit 1; }
mapfile -t entries < <(tr ':' '\n' < "$CP_FILE")
jar_path="$(printf '%s\n' "${entries[@]}" | grep -E '/fundcore-[0-9][^/]*\.jar$')"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ProGuard itself, resolved by Maven (bindings-mobile/tests/shrink/pom.xml).
mvn -q -B -f bindings-mobile/tests/shrink/pom.xml dependency:build-classpath \
  -Dmdep.outputFile="$WORK/proguard.classpath" 2>&1 | sed 's/\x1b\[0m//g'

# The rules as a consumer's shrinker finds them: every file under META-INF/proguard/ of the jar.
mapfile -t rule_files < <(unzip -Z1 "$jar_path" | grep -E '^META-INF/proguard/[^/]+\.pro$')
[ "${#rule_files[@]}" -gt 0 ] || { echo "check-shrink: no META-INF/proguard/*.pro in $jar_path" >&2; exit 1; }
{
  echo "-injars $CLASSES"
  # Java 9+ variants and manifests of the jars are not part of an Android app either.
  for entry in "${entries[@]}"; do echo "-injars $entry(!META-INF/versions/**,!META-INF/MANIFEST.MF)"; done
  echo "-outjars $WORK/shrunk.jar"
  # The platform: java.base and java.util.logging (which Android has too; JNA logs with it).
  echo "-libraryjars <java.home>/jmods/java.base.jmod(!**.jar;!module-info.class)"
  echo "-libraryjars <java.home>/jmods/java.logging.jmod(!**.jar;!module-info.class)"
  echo "-keep class JavaInterop { public static void main(java.lang.String[]); }"
  echo "-dontnote"
  # The output runs once: stored, not compressed (the debug library is 30 MB).
  echo "-dontcompress"
  for rule in "${rule_files[@]}"; do
    unzip -p "$jar_path" "$rule" > "$WORK/$(basename "$rule")"
    echo "-include $WORK/$(basename "$rule")"
  done
} > "$WORK/app.pro"
java -cp "$(cat "$WORK/proguard.classpath")" proguard.ProGuard @"$WORK/app.pro" > "$WORK/proguard.log" 2>&1 || {
  grep -v '^Note' "$WORK/proguard.log" | tail -20 >&2
  echo "check-shrink: ProGuard failed with the rules of $jar_path" >&2
  exit 1
}

# Not vacuous: the shrinker removed classes and renamed others (names no input jar has).
for entry in "${entries[@]}"; do unzip -Z1 "$entry"; done | grep '\.class$' | sort -u > "$WORK/in.classes"
unzip -Z1 "$WORK/shrunk.jar" | grep '\.class$' | sort -u > "$WORK/out.classes"
before="$(wc -l < "$WORK/in.classes")"
after="$(wc -l < "$WORK/out.classes")"
renamed="$(comm -13 "$WORK/in.classes" "$WORK/out.classes" | grep -vc '^JavaInterop' || true)"
if [ "$after" -ge "$before" ] || [ "$renamed" -eq 0 ]; then
  echo "check-shrink: ProGuard neither shrank nor renamed ($before classes in, $after out, $renamed renamed)" >&2
  exit 1
fi

echo "check-shrink: ProGuard kept $after of $before classes, $renamed of them renamed; the shrunk JavaInterop:"
java -cp "$WORK/shrunk.jar" JavaInterop
