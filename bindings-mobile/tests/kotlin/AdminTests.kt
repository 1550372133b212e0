// Administration through the Kotlin API (the rules of docs/operations.md): the fund catalogue,
// clients' contact data, the client listing and the audit trail. The library has no roles: who
// may call what is the host's business; here every call names its actor.
package fundcore.tests

import com.fundcore.*
import java.io.File
import java.math.BigDecimal
import java.nio.file.Files

private fun dec(text: String) = BigDecimal(text)

private fun FundEngine.ana() = registerClient("Ana", "ana@example.com", "+573001234567", Channel.EMAIL)

private fun FundEngine.luis() = registerClient("Luis", "luis@example.com", "+573109876543", Channel.SMS)

private fun assertMoney(expected: String, actual: BigDecimal, what: String) {
    check(actual == dec(expected)) { "$what: expected $expected (scale 2), got ${actual.toPlainString()}" }
}

fun registerAdminTests() {
    // The example of bindings-mobile/README.md ("Administration"), then what it claims.
    test("admin: the README's example") {
        FundEngine.temporary().use { engine ->
            val ana = engine.registerClient("Ana", "ana@example.com", "+573001234567", Channel.EMAIL)
            // An operator changes the catalogue; every change records who asked for it.
            val rentaFija = engine.createFund(6, "RENTA-FIJA", BigDecimal("10000"), Category.FIC, actor = "ops", requestId = "req-1")
            engine.updateFund(3, minimum = BigDecimal("90000"), actor = "ops") // for later subscriptions only
            val closed = engine.updateFund(1, active = false, actor = "ops") // no new subscriptions; cancelling still works
            val refusal = try {
                engine.createFund(6, "OTRO", BigDecimal("5000"), Category.FPV, actor = "ops")
                null
            } catch (e: FundException.FundAlreadyExists) {
                e.reason // "Ya existe el fondo 6"
            }
            // A client changes its preference: notifications created from now on go by SMS.
            val changed = engine.updateClient(ana.id, phone = "+573005550000", channel = Channel.SMS, actor = ana.id)
            // The audit trail and the clients, newest first, a page at a time (pass `next` as `before`).
            val audit = engine.auditEvents(limit = 10)
            val latest = audit.items.first() // CLIENT_UPDATED by ana.id: before["channel"] "email", after["channel"] "sms"
            val clients = engine.clients(limit = 50)

            assertEquals(Fund(6, "RENTA-FIJA", dec("10000.00"), Category.FIC, true), rentaFija, "created")
            assertMoney("90000.00", engine.fund(3).minimum, "new minimum")
            assertEquals(false, closed.active, "closed")
            assertEquals("Ya existe el fondo 6", refusal, "refusal")
            assertEquals(Channel.SMS to "+573005550000", changed.channel to changed.phone, "changed")
            assertEquals(AuditAction.CLIENT_UPDATED, latest.action, "latest action")
            assertEquals(ana.id, latest.actor, "latest actor")
            assertEquals("email" to "sms", latest.before["channel"] to latest.after["channel"], "channel change")
            assertEquals(4, audit.items.size, "created, minimum, closed, contact")
            assertEquals(null, audit.next, "one page")
            assertEquals(listOf(changed), clients.items, "clients")
        }
    }

    test("admin: createFund adds an active fund that takes subscriptions at its minimum") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val fund = engine.createFund(6, " RENTA-FIJA ", dec("10000"), Category.FIC, actor = "ops")
            assertEquals(Fund(6, "RENTA-FIJA", dec("10000.00"), Category.FIC, true), fund, "created fund")
            assertEquals(fund, engine.fund(6), "fund(6)")
            assertEquals(listOf(1L, 2L, 3L, 4L, 5L, 6L), engine.funds().map { it.id }, "catalogue by id")
            val tx = engine.subscribe(ana.id, 6)
            assertEquals("RENTA-FIJA", tx.fundName, "fund name")
            assertMoney("10000.00", tx.amount, "the new fund's minimum")
            assertMoney("490000.00", tx.balanceAfter, "balance after")
        }
    }

    test("admin: a taken fund id is FundException.FundAlreadyExists and changes nothing") {
        FundEngine.temporary().use { engine ->
            engine.createFund(6, "RENTA-FIJA", dec("10000"), Category.FIC, "ops", "req-1")
            val taken = assertThrows<FundException.FundAlreadyExists> {
                engine.createFund(6, "OTRO", dec("5000"), Category.FPV, "ops")
            }
            assertEquals("FUND_ALREADY_EXISTS", taken.code, "code")
            assertEquals("Ya existe el fondo 6", taken.reason, "message")
            // The generic accessors of FundExceptionExt.kt know the new case.
            val asBase: FundException = taken
            assertEquals("FUND_ALREADY_EXISTS", asBase.code, "base code")
            assertEquals(taken.reason, asBase.reason, "base reason")
            assertThrows<FundException.FundAlreadyExists> {
                engine.createFund(1, "OTRO", dec("5000"), Category.FPV, "ops") // a seeded fund
            }
            assertEquals(Fund(6, "RENTA-FIJA", dec("10000.00"), Category.FIC, true), engine.fund(6), "fund unchanged")
            assertEquals(1, engine.auditEvents(10).items.size, "only the creation is audited")
        }
        FundEngine.withConfig(config = EngineConfig(locale = Locale.EN)).use { engine ->
            val taken = assertThrows<FundException.FundAlreadyExists> {
                engine.createFund(2, "OTRO", dec("5000"), Category.FPV, "ops")
            }
            assertEquals("Fund 2 already exists", taken.reason, "English message")
        }
    }

    test("admin: a new minimum applies to later subscriptions; an existing one is refunded its stored amount") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val luis = engine.luis()
            engine.subscribe(ana.id, 3) // DEUDAPRIVADA at 50000
            val raised = engine.updateFund(3, minimum = dec("90000"), actor = "ops")
            assertMoney("90000.00", raised.minimum, "new minimum")
            assertMoney("50000.00", engine.subscriptions(ana.id).single().amount, "stored amount kept")
            val refund = engine.cancel(ana.id, 3)
            assertMoney("50000.00", refund.amount, "refund is the stored amount, not the new minimum")
            assertMoney("500000.00", refund.balanceAfter, "balance restored exactly")
            val below = assertThrows<FundException.BelowMinimum> { engine.subscribe(luis.id, 3, dec("60000")) }
            assertEquals("El monto mínimo para vincularse al fondo DEUDAPRIVADA es COP \$90.000", below.reason, "message")
            assertMoney("90000.00", engine.subscribe(luis.id, 3).amount, "default amount is the new minimum")
            engine.updateFund(3, minimum = dec("40000"), actor = "ops")
            assertMoney("90000.00", engine.cancel(luis.id, 3).amount, "lowered minimum: refund still the stored amount")
            assertMoney("500000.00", engine.client(luis.id).balance, "balance")
        }
    }

    test("admin: an inactive fund refuses subscriptions (FundInactive), allows cancellation, and reopens") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val luis = engine.luis()
            engine.subscribe(ana.id, 1)
            assertEquals(false, engine.updateFund(1, active = false, actor = "ops").active, "closed")
            assertEquals(false, engine.fund(1).active, "fund(1) closed")
            val refused = assertThrows<FundException.FundInactive> { engine.subscribe(luis.id, 1) }
            assertEquals("El fondo FPV_BTG_PACTUAL_RECAUDADORA no recibe nuevas suscripciones", refused.reason, "message")
            assertMoney("500000.00", engine.client(luis.id).balance, "nothing spent")
            assertMoney("75000.00", engine.cancel(ana.id, 1).amount, "cancellation of an inactive fund")
            engine.updateFund(1, active = true, actor = "ops")
            assertMoney("425000.00", engine.subscribe(luis.id, 1).balanceAfter, "reopened")
        }
    }

    test("admin: transactions keep the fund name they were recorded with") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val first = engine.subscribe(ana.id, 1)
            engine.updateFund(1, name = "RECAUDADORA-2", actor = "ops")
            val refund = engine.cancel(ana.id, 1)
            assertEquals("RECAUDADORA-2", refund.fundName, "new transactions use the new name")
            assertEquals("FPV_BTG_PACTUAL_RECAUDADORA", engine.transaction(first.id).fundName, "recorded name kept")
            assertEquals(
                listOf("RECAUDADORA-2", "FPV_BTG_PACTUAL_RECAUDADORA"),
                engine.history(ana.id, 10).map { it.fundName },
                "history",
            )
        }
    }

    test("admin: a contact change applies to notifications created afterwards; queued ones keep theirs") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val first = engine.subscribe(ana.id, 1)
            val changed = engine.updateClient(ana.id, phone = "+573005550000", channel = Channel.SMS, actor = ana.id)
            assertEquals(Channel.SMS, changed.channel, "channel")
            assertEquals("+573005550000", changed.phone, "phone")
            assertEquals("ana@example.com", changed.email, "email untouched")
            assertMoney("425000.00", changed.balance, "balance untouched")
            assertEquals(changed, engine.client(ana.id), "client(id)")
            val second = engine.subscribe(ana.id, 3)
            val notifier = AcceptingNotifier()
            assertEquals(DispatchReport(2, 0, 0), engine.dispatchNotifications(notifier, 10), "both delivered")
            val byTransaction = notifier.sent.associateBy { it.transactionId }
            val queuedBefore = byTransaction.getValue(first.id)
            assertEquals(Channel.EMAIL to "ana@example.com", queuedBefore.channel to queuedBefore.recipient, "queued before")
            val createdAfter = byTransaction.getValue(second.id)
            assertEquals(Channel.SMS to "+573005550000", createdAfter.channel to createdAfter.recipient, "created after")
            check(createdAfter.body.length <= 160) { "SMS body fits 160 characters: ${createdAfter.body.length}" }
        }
    }

    test("admin: contact changes are validated as registrations; a malformed or unknown client id is ClientNotFound") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val email = assertThrows<FundException.ValidationException> {
                engine.updateClient(ana.id, email = "not-an-email", actor = "ops")
            }
            assertEquals("email" to "email: el correo electrónico no es válido", email.field to email.reason, "email")
            val phone = assertThrows<FundException.ValidationException> {
                engine.updateClient(ana.id, phone = "3001234567", actor = "ops")
            }
            assertEquals("phone", phone.field, "phone")
            val name = assertThrows<FundException.ValidationException> {
                engine.updateClient(ana.id, name = "  ", actor = "ops")
            }
            assertEquals("name", name.field, "name")
            val nothing = assertThrows<FundException.ValidationException> { engine.updateClient(ana.id, actor = "ops") }
            assertEquals("changes", nothing.field, "no field to change")
            val noActor = assertThrows<FundException.ValidationException> {
                engine.updateClient(ana.id, name = "Ana María", actor = " ")
            }
            assertEquals("actor", noActor.field, "a blank actor")
            val malformed = assertThrows<FundException.ClientNotFound> {
                engine.updateClient("not-an-id", name = "X", actor = "ops")
            }
            assertEquals("No existe el cliente not-an-id", malformed.reason, "malformed id")
            assertThrows<FundException.ClientNotFound> {
                engine.updateClient("01934b5e-0000-7000-8000-000000000000", name = "X", actor = "ops")
            }
            assertEquals(ana, engine.client(ana.id), "client unchanged")
            assertEquals(0, engine.auditEvents(10).items.size, "nothing audited")
        }
    }

    test("admin: fund changes are validated as amounts and names; unknown fund ids are FundNotFound") {
        FundEngine.temporary().use { engine ->
            val cases = listOf(
                { engine.createFund(7, "  ", dec("10000"), Category.FIC, "ops") } to "name",
                { engine.createFund(7, "F", dec("0"), Category.FIC, "ops") } to "minimum",
                { engine.createFund(7, "F", dec("10.001"), Category.FIC, "ops") } to "minimum",
                { engine.createFund(7, "F", dec("1E+40"), Category.FIC, "ops") } to "minimum",
                { engine.createFund(7, "F", dec("10"), Category.FIC, "") } to "actor",
                { engine.updateFund(1, minimum = dec("-5"), actor = "ops") } to "minimum",
                { engine.updateFund(1, actor = "ops") } to "changes",
                { engine.updateFund(1, active = false, actor = "ops", requestId = "line\nbreak") } to "request_id",
            )
            for ((call, field) in cases) {
                val e = assertThrows<FundException.ValidationException> { call() }
                assertEquals(field, e.field, "field of ${e.reason}")
            }
            assertEquals(
                "minimum: el monto admite como máximo 2 decimales",
                assertThrows<FundException.ValidationException> {
                    engine.createFund(7, "F", dec("10.001"), Category.FIC, "ops")
                }.reason,
                "the core's amount message, on minimum",
            )
            assertThrows<FundException.FundNotFound> { engine.updateFund(99, active = false, actor = "ops") }
            assertEquals(
                "No existe el fondo -1",
                assertThrows<FundException.FundNotFound> { engine.updateFund(-1, active = false, actor = "ops") }.reason,
                "a Long outside the core's range",
            )
            assertThrows<FundException.FundNotFound> { engine.fund(7) }
            assertEquals(true, engine.fund(1).active, "fund 1 untouched")
            assertEquals(0, engine.auditEvents(10).items.size, "nothing audited")
        }
    }

    test("admin: every change writes one audit event with who, what, before and after") {
        FundEngine.temporary().use { engine ->
            val luis = engine.luis()
            engine.createFund(6, "RENTA-FIJA", dec("10000"), Category.FIC, "ops", "req-1")
            engine.updateFund(6, minimum = dec("20000"), active = true, actor = "ops")
            engine.updateFund(6, active = true, actor = "ops") // changes nothing: no event
            engine.updateClient(luis.id, channel = Channel.EMAIL, actor = luis.id, requestId = "req-3")
            val page = engine.auditEvents(10)
            assertEquals(null, page.next, "one page")
            val (clientUpdated, fundUpdated, fundCreated) = page.items.also { assertEquals(3, it.size, "events") }
            assertEquals(AuditAction.CLIENT_UPDATED, clientUpdated.action, "newest first")
            assertEquals(luis.id, clientUpdated.actor, "actor")
            assertEquals(luis.id, clientUpdated.target, "target")
            assertEquals(mapOf("channel" to "sms"), clientUpdated.before, "before")
            assertEquals(mapOf("channel" to "email"), clientUpdated.after, "after")
            assertEquals("req-3", clientUpdated.requestId, "request id")
            assertEquals(AuditAction.FUND_UPDATED, fundUpdated.action, "fund updated")
            assertEquals("6", fundUpdated.target, "fund target")
            assertEquals(mapOf("minimum" to "10000.00"), fundUpdated.before, "only the changed field")
            assertEquals(mapOf("minimum" to "20000.00"), fundUpdated.after, "after")
            assertEquals(null, fundUpdated.requestId, "no request id")
            assertEquals(AuditAction.FUND_CREATED, fundCreated.action, "fund created")
            assertEquals(emptyMap<String, String>(), fundCreated.before, "nothing before a creation")
            assertEquals(
                mapOf("name" to "RENTA-FIJA", "minimum" to "10000.00", "category" to "FIC", "active" to "true"),
                fundCreated.after,
                "every field of the new fund, as text",
            )
            assertEquals("req-1", fundCreated.requestId, "request id")
            check(page.items.zipWithNext().all { (newer, older) -> newer.id > older.id && !newer.at.isBefore(older.at) }) {
                "ids and times newest first: ${page.items.map { it.id to it.at }}"
            }
            engine.updateFund(6, active = false, actor = "ops")
            val closed = engine.auditEvents(1).items.single()
            assertEquals(mapOf("active" to "true") to mapOf("active" to "false"), closed.before to closed.after, "a flag as text")
        }
    }

    test("admin: clients and audit events come in newest-first pages with an exclusive cursor") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val luis = engine.luis()
            val bo = engine.registerClient("Bo", "bo@example.com", "+573001112233", Channel.EMAIL)
            val first = engine.clients(2)
            assertEquals(listOf(bo.id, luis.id), first.items.map { it.id }, "page 1")
            assertEquals(luis.id, first.next, "cursor: the last id of the page")
            val second = engine.clients(2, first.next)
            assertEquals(listOf(ana), second.items, "page 2, whole records")
            assertEquals(null, second.next, "last page")
            assertEquals(3, engine.clients(3).items.size, "exactly full")
            assertEquals(null, engine.clients(3).next, "no empty page after an exactly full one")

            for (i in 1..3) engine.updateClient(ana.id, name = "Ana $i", actor = "ops")
            val events = engine.auditEvents(2)
            assertEquals(listOf("Ana 3", "Ana 2"), events.items.map { it.after.getValue("name") }, "page 1")
            val rest = engine.auditEvents(2, events.next)
            assertEquals(listOf("Ana 1"), rest.items.map { it.after.getValue("name") }, "page 2")
            assertEquals(mapOf("name" to "Ana"), rest.items.single().before, "first change's before")
            assertEquals(null, rest.next, "last page")

            for (limit in listOf(0, -1, 201)) {
                assertEquals("limit", assertThrows<FundException.ValidationException> { engine.clients(limit) }.field, "clients($limit)")
                assertEquals("limit", assertThrows<FundException.ValidationException> { engine.auditEvents(limit) }.field, "auditEvents($limit)")
            }
            assertEquals("before", assertThrows<FundException.ValidationException> { engine.clients(2, "nope") }.field, "client cursor")
            assertEquals("before", assertThrows<FundException.ValidationException> { engine.auditEvents(2, "nope") }.field, "audit cursor")
        }
    }

    test("admin: the store's catalogue and audit trail outlive the engine; the configured catalogue only seeds a new store") {
        val path = File(Files.createTempDirectory("fundcore-admin").toFile().also { it.deleteOnExit() }, "store").path
        val seeded = EngineConfig(funds = listOf(Fund(1, "UNO", dec("1000"), Category.FIC, true)))
        FundEngine.withConfig(path, seeded).use { engine ->
            engine.createFund(2, "DOS", dec("2000"), Category.FPV, "ops")
            engine.updateFund(1, minimum = dec("1500"), active = false, actor = "ops")
            val ana = engine.ana()
            engine.updateClient(ana.id, channel = Channel.SMS, actor = "ops")
        }
        val other = EngineConfig(funds = listOf(Fund(9, "NUEVE", dec("9000"), Category.FIC, true)))
        FundEngine.withConfig(path, other).use { engine ->
            assertEquals(
                listOf(
                    Fund(1, "UNO", dec("1500.00"), Category.FIC, false),
                    Fund(2, "DOS", dec("2000.00"), Category.FPV, true),
                ),
                engine.funds(),
                "the store's catalogue",
            )
            assertEquals(Channel.SMS, engine.clients(1).items.single().channel, "contact change kept")
            assertEquals(
                listOf(AuditAction.CLIENT_UPDATED, AuditAction.FUND_UPDATED, AuditAction.FUND_CREATED),
                engine.auditEvents(10).items.map { it.action },
                "audit trail kept",
            )
        }
    }
}
