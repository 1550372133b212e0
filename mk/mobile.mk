# The mobile binding (bindings-mobile/): Kotlin on the JVM, Swift generated. Included by the Makefile.
# uniffi bindings (bindings-mobile/): Kotlin tested on the JVM with JNA; Swift generated and
# checked for every operation (no Swift toolchain here). See bindings-mobile/README.md.
KOTLIN_HOME := build/tools/node_modules/kotlin-compiler
KOTLINC     := $(KOTLIN_HOME)/bin/kotlinc
JNA_JAR     := /usr/share/java/jna.jar
KOTLIN_OUT  := build/kotlin
KOTLIN_JAR  := $(KOTLIN_OUT)/fundcore-kotlin.jar
KOTLIN_RUN  := java -cp $(KOTLIN_JAR):$(KOTLIN_HOME)/lib/kotlin-stdlib.jar:$(JNA_JAR)
.PHONY: mobile-generate kotlin-jar kotlin-example

# Kotlin compiler 2.4.20 (npm, into build/tools) and JNA (Debian libjna-java); quick when present.
setup-kotlin:
	scripts/setup-kotlin.sh

# Build the cdylib, generate Kotlin + Swift into bindings-mobile/generated/, check both expose every operation.
mobile-generate:
	bindings-mobile/scripts/generate.sh
	bindings-mobile/scripts/check-generated.sh

# The JVM jar: compiled bindings + the native library as a JNA resource.
kotlin-jar: setup-kotlin mobile-generate
	bindings-mobile/scripts/build-jar.sh

# Java against the jar: no public name Java cannot call (javap), then a Java program (javac).
JAVA_OUT := $(KOTLIN_OUT)/java
.PHONY: test-java
test-java: kotlin-jar
	bindings-mobile/scripts/check-java-api.sh $(KOTLIN_JAR)
	rm -rf $(JAVA_OUT) && mkdir -p $(JAVA_OUT)
	javac --release 17 -Xlint:all -Werror -cp $(KOTLIN_JAR):$(KOTLIN_HOME)/lib/kotlin-stdlib.jar:$(JNA_JAR) -d $(JAVA_OUT) bindings-mobile/tests/java/JavaInterop.java
	$(KOTLIN_RUN):$(JAVA_OUT) JavaInterop

# Kotlin tests on the JVM: every shared scenario plus the Kotlin-specific tests, after the Java
# program and the quickstart example (whose code the READMEs show).
test-kotlin: kotlin-jar test-java kotlin-example
	$(KOTLINC) -nowarn -cp $(KOTLIN_JAR):$(JNA_JAR) -d $(KOTLIN_OUT)/fundcore-tests.jar bindings-mobile/tests/kotlin/*.kt
	$(KOTLIN_RUN):$(KOTLIN_OUT)/fundcore-tests.jar fundcore.tests.MainKt core/tests/scenarios

# The quickstart story in Kotlin (examples/kotlin/).
kotlin-example: kotlin-jar
	$(KOTLINC) -nowarn -cp $(KOTLIN_JAR):$(JNA_JAR) -d $(KOTLIN_OUT)/quickstart.jar examples/kotlin/Quickstart.kt
	$(KOTLIN_RUN):$(KOTLIN_OUT)/quickstart.jar QuickstartKt
