// The test runner: tests register with `test(name) { ... }`; `runAll` runs them, prints one line
// per test and a final "N passed, M failed" line.
package fundcore.tests

import com.fundcore.FundException

class TestFailure(message: String) : AssertionError(message)

private val registry = mutableListOf<Pair<String, () -> Unit>>()

fun test(name: String, body: () -> Unit) {
    registry.add(name to body)
}

fun fail(message: String): Nothing = throw TestFailure(message)

fun check(condition: Boolean, message: () -> String) {
    if (!condition) fail(message())
}

fun <T> assertEquals(expected: T, actual: T, what: String = "value") {
    if (expected != actual) fail("$what: expected <$expected>, got <$actual>")
}

/** Runs `block`, which must throw a FundException of type E; returns it. */
inline fun <reified E : FundException> assertThrows(block: () -> Unit): E {
    try {
        block()
    } catch (e: FundException) {
        if (e is E) return e
        fail("expected ${E::class.simpleName}, got ${e::class.simpleName}: ${e.message}")
    }
    fail("expected ${E::class.simpleName}, nothing was thrown")
}

/** Returns the number of failed tests. */
fun runAll(): Int {
    var passed = 0
    var failed = 0
    for ((name, body) in registry) {
        val started = System.nanoTime()
        try {
            body()
            passed++
            println("ok    $name (${(System.nanoTime() - started) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("FAIL  $name: ${e::class.simpleName}: ${e.message}")
            if (e !is TestFailure) e.printStackTrace(System.out)
        }
    }
    println("$passed passed, $failed failed")
    return failed
}
