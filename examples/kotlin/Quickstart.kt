// The quickstart story through the Kotlin bindings (package com.fundcore), run by `make test`
// (`make kotlin-example`). `quickstart` is the code the READMEs show, verbatim; `main` runs it
// and checks what it printed, then tells the longer story: subscribe until the balance runs
// out, cancel one subscription, print the history, deliver the notifications through a
// notifier written in Kotlin. Any mismatch ends the program with an exception (exit status 1).
import java.io.ByteArrayOutputStream
import java.io.File
import java.io.PrintStream
import java.nio.file.Files
import com.fundcore.*
import java.math.BigDecimal

/** Android: call it off the main thread (e.g. in Dispatchers.IO) with the app's Context. */
fun quickstart(context: Context) {
    FundEngine(context.filesDir.resolve("fundcore").path).use { engine ->
        val ana = engine.registerClient("Ana", "ana@example.com", "+573001234567", Channel.EMAIL)
        val tx = engine.subscribe(ana.id, 1, BigDecimal("80000"), idempotencyKey = "k-1")
        println("${tx.kind} ${tx.amount} ${tx.balanceAfter}") // SUBSCRIPTION 80000.00 420000.00
        try {
            engine.subscribe(ana.id, 4, BigDecimal("450000"))
        } catch (e: FundException.InsufficientBalance) {
            println("${e.code} ${e.reason}")
            // INSUFFICIENT_BALANCE No tiene saldo disponible para vincularse al fondo FDO-ACCIONES
        }
        engine.cancel(ana.id, 1)
        for (t in engine.history(ana.id, 50)) println("${t.kind} ${t.fundName} ${t.amount}")
        // CANCELLATION FPV_BTG_PACTUAL_RECAUDADORA 80000.00
        // SUBSCRIPTION FPV_BTG_PACTUAL_RECAUDADORA 80000.00
        engine.dispatchNotifications(object : Notifier {
            override fun send(notification: Notification) { /* your email or SMS gateway */ }
        }, 100)
    }
}

/** Stands in for Android's `android.content.Context` on the JVM: only its files directory. */
class Context(val filesDir: File)

/** What the quickstart prints, as the comments beside its `println` calls say. */
private val QUICKSTART_OUTPUT = listOf(
    "SUBSCRIPTION 80000.00 420000.00",
    "INSUFFICIENT_BALANCE No tiene saldo disponible para vincularse al fondo FDO-ACCIONES",
    "CANCELLATION FPV_BTG_PACTUAL_RECAUDADORA 80000.00",
    "SUBSCRIPTION FPV_BTG_PACTUAL_RECAUDADORA 80000.00",
)

/** Runs `block` and returns what it printed on standard output. */
private fun printedBy(block: () -> Unit): String {
    val buffer = ByteArrayOutputStream()
    val original = System.out
    System.setOut(PrintStream(buffer, true, Charsets.UTF_8))
    try {
        block()
    } finally {
        System.setOut(original)
    }
    return buffer.toString(Charsets.UTF_8)
}

/** Prints each message instead of sending it; a real app would call its email/SMS gateway. */
class ConsoleNotifier : Notifier {
    override fun send(notification: Notification) {
        println("  -> ${notification.channel.name.lowercase()} to ${notification.recipient}: ${notification.subject}")
        println("     " + notification.body.replace("\n", "\n     "))
    }
}

/** The longer story, with the balance checked at each step. */
fun wholeStory(path: String) {
    FundEngine(path).use { engine ->
        println("Funds:")
        for (fund in engine.funds()) {
            println("  ${fund.id} ${fund.name} (${fund.category}) minimum ${formatCop(fund.minimum)}")
        }

        val ana = engine.registerClient("Ana", "ana@example.com", "+573001234567", Channel.EMAIL)
        println("\nRegistered ${ana.name} (${ana.id}) with ${formatCop(ana.balance)}")

        println("\nSubscribing to every fund at its minimum until the balance runs out:")
        val refused = mutableListOf<String>()
        for (fund in engine.funds()) {
            try {
                val tx = engine.subscribe(ana.id, fund.id, idempotencyKey = "quickstart-${fund.id}")
                println("  ${fund.name}: ${formatCop(tx.amount)}, balance ${formatCop(tx.balanceAfter)}")
            } catch (e: FundException) {
                println("  ${fund.name}: refused ${e.code}: ${e.reason}")
                refused.add("${fund.id} ${e.code}")
            }
        }
        // 75.000 + 125.000 + 50.000 + 250.000 spend the 500.000 exactly; fund 5 is refused.
        check(refused == listOf("5 INSUFFICIENT_BALANCE")) { "refused: $refused" }
        check(engine.client(ana.id).balance.signum() == 0) { "balance after subscribing: ${engine.client(ana.id).balance}" }

        val cancel = engine.cancel(ana.id, 1)
        println("\nCancelled ${cancel.fundName}: refund ${formatCop(cancel.amount)}, balance ${formatCop(cancel.balanceAfter)}")
        check(cancel.balanceAfter == BigDecimal("75000.00")) { "balance after cancel: ${cancel.balanceAfter}" }

        println("\nHistory (newest first):")
        val history = engine.history(ana.id, 50)
        for (tx in history) {
            println("  ${tx.createdAt} ${tx.kind.name.lowercase()} ${tx.fundName} ${tx.amount.toPlainString()} -> ${tx.balanceAfter.toPlainString()}")
        }
        check(history.size == 5 && history.first() == cancel) { "history: $history" }

        println("\nDispatching notifications:")
        val report = engine.dispatchNotifications(ConsoleNotifier(), 100)
        println("delivered ${report.delivered}, retried ${report.retried}, failed ${report.failed}")
        check(report == DispatchReport(5, 0, 0)) { "dispatch: $report" }
    }
}

fun main() {
    val dir = Files.createTempDirectory("fundcore-quickstart").toFile()
    try {
        val printed = printedBy { quickstart(Context(dir)) }
        print(printed)
        check(printed.lines().filter { it.isNotEmpty() } == QUICKSTART_OUTPUT) {
            "the quickstart printed\n$printed\nexpected\n${QUICKSTART_OUTPUT.joinToString("\n")}"
        }
        println()
        wholeStory(dir.resolve("story").path)
        println("\nquickstart: every step as expected")
    } finally {
        dir.deleteRecursively()
    }
}
