// Backups through the Kotlin API (docs/stores.md, "Backups"): a copy taken while other threads
// subscribe and cancel holds every change acknowledged before it started and opens as a store of
// its own; a destination that exists is refused and left as it was.
package fundcore.tests

import com.fundcore.*
import java.nio.file.Files
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.concurrent.thread

fun registerBackupTests() {
    test("backup: a copy taken under load holds every acknowledged change") {
        val dir = Files.createTempDirectory("fundcore-backup").toFile()
        val dest = dir.resolve("backup")
        val acknowledged = java.util.Collections.synchronizedList(mutableListOf<Pair<Long, Transaction>>())
        var started = 0L
        FundEngine(dir.resolve("store").path).use { engine ->
            val clients = (0 until 20).map {
                engine.registerClient("Cliente $it", "c$it@example.com", "+573001234567", Channel.EMAIL).id
            }
            val stop = AtomicBoolean(false)
            val writers = (1..2).map { seed ->
                thread {
                    var n = seed.toLong()
                    while (!stop.get()) {
                        n = (n * 1103515245 + 12345) % 2147483648
                        val client = clients[(n % clients.size).toInt()]
                        val fund = 1L + n % 5
                        try {
                            val tx = if (n % 2 == 0L) engine.subscribe(client, fund) else engine.cancel(client, fund)
                            acknowledged.add(System.nanoTime() to tx)
                        } catch (e: FundException) {
                            // ALREADY_SUBSCRIBED, NOT_SUBSCRIBED, INSUFFICIENT_BALANCE: nothing changed
                        }
                    }
                }
            }
            Thread.sleep(100)
            started = System.nanoTime()
            engine.backup(dest.path)
            stop.set(true)
            writers.forEach { it.join() }
        }
        val before = synchronized(acknowledged) { acknowledged.filter { it.first < started }.map { it.second } }
        check(before.isNotEmpty()) { "the load ran before the backup" }
        FundEngine(dest.path).use { copy ->
            before.forEach { assertEquals(it, copy.transaction(it.id), "acknowledged ${it.id}") }
            check(copy.verifyLedger().clean) { "the copy's ledger is clean" }
        }
        dir.deleteRecursively()
    }

    test("backup: a destination that exists is refused and left as it was") {
        val dir = Files.createTempDirectory("fundcore-backup").toFile()
        val existing = dir.resolve("existing")
        existing.writeText("keep me")
        FundEngine(dir.resolve("store").path).use { engine ->
            val e = assertThrows<FundException.ValidationException> { engine.backup(existing.path) }
            assertEquals("dest", e.field, "field")
            check(e.reason.contains(existing.path)) { "the path in ${e.reason}" }
        }
        assertEquals("keep me", existing.readText(), "untouched")
        dir.deleteRecursively()
    }
}
