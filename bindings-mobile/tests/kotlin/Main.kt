// Entry point of the Kotlin (JVM) tests: `java ... fundcore.tests.MainKt <scenarios dir>`.
package fundcore.tests

import java.io.File
import kotlin.system.exitProcess

fun main(args: Array<String>) {
    val scenarios = File(args.getOrElse(0) { "core/tests/scenarios" })
    registerScenarioTests(scenarios)
    registerApiTests()
    registerAdminTests()
    registerBackupTests()
    val failed = runAll()
    exitProcess(if (failed == 0) 0 else 1)
}
