#!/usr/bin/env bash
# Checks that the public API of the Kotlin jar can be called from Java. Kotlin mangles the JVM
# name of every function, getter or copy() that takes or returns an unsigned type (`UInt`,
# `ULong`, ...): `subscribe-Yuhug_o` cannot be written in Java source. Boxed unsigned types
# (`kotlin.UInt` in a nullable field) cannot be built from Java either, nor can a record whose
# only constructor is a synthetic one (an unsigned field). This script lists the
# public members of every API class of package com.fundcore with javap and fails on either.
# uniffi's own plumbing (FfiConverter*, Uniffi*, RustBuffer, ...) is public in the bytecode but
# not part of the API (its FfiConverter interface itself uses ULong), so it is left out, as are
# members compiled from Kotlin `internal` ones (their JVM names end in `$main`).
#
#   usage: check-java-api.sh [jar]      (default: the fundcore jar of build/kotlin/classpath.txt,
#                                        i.e. the installed one a consumer resolves)
set -euo pipefail
cd "$(dirname "$0")/../.."

JAR="${1:-$(tr ':' '\n' < build/kotlin/classpath.txt 2>/dev/null | grep -E '/fundcore-[^/]*\.jar$' || true)}"
if [ -z "$JAR" ] || [ ! -f "$JAR" ]; then echo "check-java-api: ${JAR:-the fundcore jar} missing (make kotlin-jar)" >&2; exit 1; fi

# shellcheck disable=SC2016 # a regular expression: \$ is a literal dollar
PLUMBING='^com\.fundcore\.(FfiConverter|Uniffi|uniffi|RustBuffer|ForeignBytes|InternalException|IntegrityCheckingUniffiLib|Disposable|NoHandle|JavaLangRefClean)|\$(UniffiCleanAction|ErrorHandler)$'
mapfile -t classes < <(jar tf "$JAR" | grep -E '^com/fundcore/[^/]+\.class$' | sed -e 's/\.class$//' -e 's#/#.#g' | grep -vE "$PLUMBING")
[ "${#classes[@]}" -gt 0 ] || { echo "check-java-api: no com.fundcore classes in $JAR" >&2; exit 1; }

# javap prints "public ... class com.fundcore.X ... {" then one line per public member.
report="$(javap -public -cp "$JAR" "${classes[@]}" | awk '
  /^(public|protected).*(class|interface) / {
    owner = $0; sub(/ *\{$/, "", owner); sub(/ (extends|implements) .*/, "", owner); sub(/<.*/, "", owner)
    n = split(owner, words, " "); owner = words[n]; next
  }
  /\(/ {
    head = substr($0, 1, index($0, "(") - 1)
    n = split(head, words, " ")
    name = words[n]
    if (name ~ /\$main$/) next
    if (name ~ /-/) { print "mangled name: " owner "." name "  <-" $0; next }
    # A constructor: Kotlin makes it synthetic (an extra DefaultConstructorMarker, which javac
    # does not let Java call) when a parameter is unsigned. Companions have only the marker.
    if (name == owner && $0 !~ /\(kotlin\.jvm\.internal\.DefaultConstructorMarker\)/) {
      if ($0 ~ /DefaultConstructorMarker/) marked[owner] = $0; else plain[owner] = 1
    }
  }
  /kotlin\.U(Int|Long|Short|Byte)(Array)?[^A-Za-z]/ { print "unsigned type: " owner "  <-" $0 }
  END { for (o in marked) if (!(o in plain)) print "no constructor Java can call: " o "  <-" marked[o] }
')"

if [ -n "$report" ]; then
  echo "$report" >&2
  echo "check-java-api: $(printf '%s\n' "$report" | wc -l) public member(s) or class(es) of $JAR cannot be used from Java" >&2
  exit 1
fi
echo "check-java-api: ${#classes[@]} API classes in $JAR: no mangled names, no unsigned types, every record constructible"
