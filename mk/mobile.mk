# The mobile binding (bindings-mobile/): Kotlin on the JVM, Swift generated. Included by the Makefile.
# uniffi bindings (bindings-mobile/): the JVM artifact com.fundcore:fundcore built with Maven and
# tested through its coordinates; Swift generated, its C header and the library's exports checked
# (no Swift toolchain here). See bindings-mobile/README.md.
KOTLIN_HOME := build/tools/node_modules/kotlin-compiler
KOTLINC     := $(KOTLIN_HOME)/bin/kotlinc
KOTLIN_OUT  := build/kotlin
# The runtime classpath of a program that depends on com.fundcore:fundcore, resolved by Maven
# from the installed artifact's POM (bindings-mobile/scripts/build-jar.sh writes it).
JVM_CP      := $$(cat $(KOTLIN_OUT)/classpath.txt)
KOTLIN_RUN  := java -cp $(JVM_CP)
.PHONY: setup-kotlin mobile-generate kotlin-jar kotlin-example test-java test-kotlin test-swift lint-mobile

# Kotlin compiler 2.4.20 (npm, into build/tools); checks Java 17 and Maven; quick when present.
setup-kotlin:
	scripts/setup-kotlin.sh

# Build the cdylib, generate Kotlin (JVM and Android flavours) + Swift into bindings-mobile/generated/,
# check that they expose every operation.
mobile-generate:
	bindings-mobile/scripts/generate.sh
	bindings-mobile/scripts/check-generated.sh

# The JVM artifact com.fundcore:fundcore (jar with the native library and R8 rules, sources jar,
# POM) built with Maven, installed into ~/.m2, and the classpath a consumer of it gets.
kotlin-jar: setup-kotlin mobile-generate
	bindings-mobile/scripts/build-jar.sh
	bindings-mobile/scripts/check-jar.sh

# Java against the installed jar: no public name Java cannot call (javap), then a Java program
# (javac), then the same program shrunk and obfuscated by ProGuard under the jar's consumer rules.
JAVA_OUT := $(KOTLIN_OUT)/java
test-java: kotlin-jar
	bindings-mobile/scripts/check-java-api.sh
	rm -rf $(JAVA_OUT) && mkdir -p $(JAVA_OUT)
	javac --release 17 -Xlint:all -Werror -cp $(JVM_CP) -d $(JAVA_OUT) bindings-mobile/tests/java/JavaInterop.java
	java -cp $(JVM_CP):$(JAVA_OUT) JavaInterop
	bindings-mobile/scripts/check-shrink.sh $(JAVA_OUT)

# Kotlin tests on the JVM: every shared scenario plus the Kotlin-specific tests, after the Java
# program and the quickstart example (whose code the READMEs show). kotlinc compiles against
# the consumer's classpath (its kotlin-stdlib, not the compiler's own).
test-kotlin: kotlin-jar test-java kotlin-example
	$(KOTLINC) -nowarn -no-stdlib -cp $(JVM_CP) -d $(KOTLIN_OUT)/fundcore-tests.jar bindings-mobile/tests/kotlin/*.kt
	java -cp $(JVM_CP):$(KOTLIN_OUT)/fundcore-tests.jar fundcore.tests.MainKt core/tests/scenarios

# The quickstart story in Kotlin (examples/kotlin/).
kotlin-example: kotlin-jar
	$(KOTLINC) -nowarn -no-stdlib -cp $(JVM_CP) -d $(KOTLIN_OUT)/quickstart.jar examples/kotlin/Quickstart.kt
	java -cp $(JVM_CP):$(KOTLIN_OUT)/quickstart.jar QuickstartKt

# Swift without a Swift toolchain: the C header compiles, the library exports every function it
# declares, and package-xcframework.sh writes the zip's SHA-256 into Package.swift.
test-swift: mobile-generate
	bindings-mobile/scripts/check-swift.sh

# The binding's scripts: shellcheck (Debian's, installed when missing) and ruff on the Python helper.
lint-mobile: host-lint-deps
	scripts/apt-install.sh shellcheck
	shellcheck bindings-mobile/scripts/*.sh scripts/setup-kotlin.sh
	$(VENV)/bin/ruff check bindings-mobile/scripts
	$(VENV)/bin/ruff format --check bindings-mobile/scripts
