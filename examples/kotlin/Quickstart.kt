// The quickstart story through the Kotlin bindings (package com.fundcore):
// open a store in a temporary directory, register a client, subscribe until the balance runs
// out, cancel one subscription, print the history, and deliver the notifications through a
// notifier written in Kotlin.
//
//   make kotlin-example
import com.fundcore.Channel
import com.fundcore.FundEngine
import com.fundcore.FundException
import com.fundcore.Notification
import com.fundcore.Notifier
import com.fundcore.code
import com.fundcore.formatCop
import com.fundcore.reason
import java.nio.file.Files

/** Prints each message instead of sending it; a real app would call its email/SMS gateway. */
class ConsoleNotifier : Notifier {
    override fun send(notification: Notification) {
        println("  -> ${notification.channel.name.lowercase()} to ${notification.recipient}: ${notification.subject}")
        println("     " + notification.body.replace("\n", "\n     "))
    }
}

fun main() {
    val dir = Files.createTempDirectory("fundcore-quickstart")
    FundEngine(dir.resolve("store").toString()).use { engine ->
        println("Funds:")
        for (fund in engine.funds()) {
            println("  ${fund.id} ${fund.name} (${fund.category}) minimum ${formatCop(fund.minimum)}")
        }

        val ana = engine.registerClient("Ana", "ana@example.com", "+573001234567", Channel.EMAIL)
        println("\nRegistered ${ana.name} (${ana.id}) with ${formatCop(ana.balance)}")

        println("\nSubscribing to every fund at its minimum until the balance runs out:")
        for (fund in engine.funds()) {
            try {
                val tx = engine.subscribe(ana.id, fund.id, idempotencyKey = "quickstart-${fund.id}")
                println("  ${fund.name}: ${formatCop(tx.amount)}, balance ${formatCop(tx.balanceAfter)}")
            } catch (e: FundException) {
                println("  ${fund.name}: refused ${e.code}: ${e.reason}")
            }
        }

        val cancel = engine.cancel(ana.id, 1u)
        println("\nCancelled ${cancel.fundName}: refund ${formatCop(cancel.amount)}, balance ${formatCop(cancel.balanceAfter)}")

        println("\nHistory (newest first):")
        for (tx in engine.history(ana.id, 50u)) {
            println("  ${tx.createdAt} ${tx.kind.name.lowercase()} ${tx.fundName} ${tx.amount.toPlainString()} -> ${tx.balanceAfter.toPlainString()}")
        }

        println("\nDispatching notifications:")
        val report = engine.dispatchNotifications(ConsoleNotifier(), 100u)
        println("delivered ${report.delivered}, retried ${report.retried}, failed ${report.failed}")
    }
    dir.toFile().deleteRecursively()
}
