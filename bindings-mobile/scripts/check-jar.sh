#!/usr/bin/env bash
# Checks the installed artifact com.fundcore:fundcore as a consumer gets it (after build-jar.sh):
#   - the jar carries the native library under JNA's resource prefix, the consumer R8/ProGuard
#     rules under META-INF/proguard/ (the file of bindings-mobile/jvm/proguard/) and the classes
#     JNA reaches (UniffiLib, RustBuffer, the Notifier vtable);
#   - the sources jar carries the Kotlin sources and no native library;
#   - the consumer's classpath (resolved from the POM) has kotlin-stdlib and JNA 5.17 or newer,
#     every entry from the Maven repository, none from the system (/usr/share/java).
# Exits non-zero listing every problem.
#
#   usage: check-jar.sh [classpath file]   (default: build/kotlin/classpath.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."

CP_FILE="${1:-build/kotlin/classpath.txt}"
[ -s "$CP_FILE" ] || { echo "check-jar: $CP_FILE missing (bindings-mobile/scripts/build-jar.sh)" >&2; exit 1; }
mapfile -t entries < <(tr ':' '\n' < "$CP_FILE")
problems=0
problem() { echo "check-jar: $*" >&2; problems=$((problems + 1)); }

jar_path="$(printf '%s\n' "${entries[@]}" | grep -E '/fundcore-[0-9][^/]*\.jar$' || true)"
if [ -z "$jar_path" ] || [ ! -f "$jar_path" ]; then echo "check-jar: no fundcore jar in $CP_FILE" >&2; exit 1; fi
sources="${jar_path%.jar}-sources.jar"
pom="${jar_path%.jar}.pom"

listing="$(unzip -Z1 "$jar_path")"
has() { grep -qxF -- "$2" <<<"$1"; }
case "$(uname -m)" in x86_64) prefix=linux-x86-64 ;; aarch64) prefix=linux-aarch64 ;; *) prefix="linux-$(uname -m)" ;; esac
for entry in "$prefix/libfundcore_mobile.so" META-INF/proguard/fundcore.pro \
             com/fundcore/UniffiLib.class com/fundcore/RustBuffer\$ByValue.class \
             com/fundcore/UniffiVTableCallbackInterfaceNotifier.class com/fundcore/FundEngine.class \
             com/fundcore/FundExceptionExtKt.class com/fundcore/JavaNotifier.class; do
  has "$listing" "$entry" || problem "$jar_path has no $entry"
done
if has "$listing" META-INF/proguard/fundcore.pro &&
   ! cmp -s <(unzip -p "$jar_path" META-INF/proguard/fundcore.pro) bindings-mobile/jvm/proguard/fundcore.pro; then
  problem "$jar_path: META-INF/proguard/fundcore.pro differs from bindings-mobile/jvm/proguard/fundcore.pro"
fi

if [ -f "$sources" ]; then
  src_listing="$(unzip -Z1 "$sources")"
  for entry in com/fundcore/fundcore_mobile.kt com/fundcore/FundExceptionExt.kt com/fundcore/JavaNotifier.kt; do
    has "$src_listing" "$entry" || problem "$sources has no $entry"
  done
  grep -q '\.so$' <<<"$src_listing" && problem "$sources carries a native library"
else
  problem "no sources jar beside $jar_path"
fi
[ -f "$pom" ] || problem "no POM beside $jar_path"

stdlib="$(printf '%s\n' "${entries[@]}" | grep -E '/kotlin-stdlib-[0-9][^/]*\.jar$' || true)"
[ -n "$stdlib" ] || problem "no kotlin-stdlib on the consumer classpath"
jna="$(printf '%s\n' "${entries[@]}" | grep -E '/jna-[0-9][^/]*\.jar$' || true)"
if [ -z "$jna" ]; then
  problem "no JNA on the consumer classpath"
else
  jna_version="$(basename "$jna" .jar)"; jna_version="${jna_version#jna-}"
  # 5.17 is the first JNA whose Android native library loads on 16 KB page devices.
  if [ "$(printf '%s\n' 5.17.0 "$jna_version" | sort -V | head -n1)" != 5.17.0 ]; then
    problem "JNA $jna_version on the consumer classpath, 5.17.0 or newer needed"
  fi
fi
for entry in "${entries[@]}"; do
  case "$entry" in
    /usr/share/java/*) problem "a system jar on the consumer classpath: $entry" ;;
  esac
  [ -f "$entry" ] || problem "missing classpath entry: $entry"
done

if [ "$problems" -ne 0 ]; then
  echo "check-jar: $problems problem(s)" >&2
  exit 1
fi
echo "check-jar: $(basename "$jar_path") ($(du -k "$jar_path" | cut -f1) KiB) with $prefix/libfundcore_mobile.so and META-INF/proguard/fundcore.pro, sources jar, POM; JNA $jna_version, $(basename "$stdlib" .jar)"
