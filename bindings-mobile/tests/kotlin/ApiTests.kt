// Kotlin-specific tests of the bindings: BigDecimal money, every exception case with its
// message, a Kotlin notifier called back, several Kotlin threads, reopening a store.
package fundcore.tests

import com.fundcore.*
import java.io.File
import java.math.BigDecimal
import java.nio.file.Files
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

private fun dec(text: String) = BigDecimal(text)

private fun FundEngine.ana(channel: Channel = Channel.EMAIL) =
    registerClient("Ana", "ana@example.com", "+573001234567", channel)

private fun tempDir(prefix: String): File = Files.createTempDirectory(prefix).toFile().also { it.deleteOnExit() }

/** Exactly equal, scale included: "80000.00" is not "80000". */
private fun assertMoney(expected: String, actual: BigDecimal, what: String) {
    check(actual == dec(expected)) { "$what: expected $expected (scale 2), got ${actual.toPlainString()}" }
}

fun registerApiTests() {
    // ------------------------------------------------------------ money
    test("money: amounts come back as BigDecimal with exactly 2 decimals") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            assertMoney("500000.00", ana.balance, "initial balance")
            val tx = engine.subscribe(ana.id, 1, dec("80000"))
            assertMoney("80000.00", tx.amount, "amount")
            assertMoney("420000.00", tx.balanceAfter, "balance after")
            val funds = engine.funds()
            assertEquals(5, funds.size, "fund count")
            assertMoney("75000.00", funds[0].minimum, "fund 1 minimum")
        }
    }

    test("money: cents, exponent notation and values beyond Double precision round-trip exactly") {
        // 999999999999.99 + 0.01 is not representable exactly as a Double sum; BigDecimal is.
        val config = EngineConfig(initialBalance = dec("1000000000000"))
        FundEngine.withConfig(config = config).use { engine ->
            val ana = engine.ana()
            assertMoney("1000000000000.00", ana.balance, "initial balance")
            val big = engine.subscribe(ana.id, 4, dec("999999999999.99"))
            assertMoney("999999999999.99", big.amount, "big amount")
            assertMoney("0.01", big.balanceAfter, "balance after big")
            engine.cancel(ana.id, 4)
            val cents = engine.subscribe(ana.id, 1, dec("75000.10"))
            assertMoney("75000.10", cents.amount, "cents")
            assertMoney("999999924999.90", cents.balanceAfter, "balance after cents")
            val exponent = engine.subscribe(ana.id, 3, dec("1.5E+5")) // toPlainString: 150000
            assertMoney("150000.00", exponent.amount, "exponent notation")
            assertMoney("999999774999.90", engine.client(ana.id).balance, "final balance")
        }
    }

    test("money: parseAmount and formatCop use the engine's rules") {
        assertMoney("80000.50", parseAmount("80000.50"), "parsed")
        check(parseAmount("80000").compareTo(dec("80000")) == 0) { "parsed integer" }
        val e = assertThrows<FundException.ValidationException> { parseAmount("ochenta mil") }
        assertEquals("amount", e.field, "field")
        assertEquals("VALIDATION_ERROR", e.code, "code")
        assertEquals("COP \$75.000", formatCop(dec("75000")), "format")
        assertEquals("COP \$1.250.000,50", formatCop(dec("1250000.5")), "format with cents")
        // More digits than the engine holds: no error to report, so the amount comes back as given.
        assertEquals(dec("1E+40").toPlainString(), formatCop(dec("1E+40")), "format of an amount the engine cannot read")
        assertEquals(Channel.SMS, parseChannel("sms"), "channel")
    }

    test("money: too many decimals, zero, negative, too large and out-of-range BigDecimals are VALIDATION_ERROR") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            // The last two do not even fit the engine's 96-bit decimal: still VALIDATION_ERROR.
            for (bad in listOf("80000.001", "0", "-80000", "1000000000000.01", "1E+40", "1E-40")) {
                val e = assertThrows<FundException.ValidationException> { engine.subscribe(ana.id, 1, dec(bad)) }
                assertEquals("amount", e.field, "field for $bad")
            }
            assertMoney("500000.00", engine.client(ana.id).balance, "balance unchanged")
        }
    }

    test("money: a BigDecimal the engine cannot read is refused in the engine's locale, settings included") {
        // The core's own answer for each text in each language, through parseAmount.
        val reason = { bad: BigDecimal, locale: Locale ->
            assertThrows<FundException.ValidationException> { parseAmount(bad.toPlainString(), locale) }.reason
        }
        for (bad in listOf(dec("1E+40"), dec("1E-40"))) {
            val english = reason(bad, Locale.EN)
            check(english != reason(bad, Locale.ES)) { "the core words $bad differently in English" }
            FundEngine.withConfig(config = EngineConfig(locale = Locale.EN)).use { engine ->
                val ana = engine.ana()
                val e = assertThrows<FundException.ValidationException> { engine.subscribe(ana.id, 1, bad) }
                assertEquals("amount", e.field, "field for $bad")
                assertEquals(english, e.reason, "subscribe($bad) on an English engine")
                assertMoney("500000.00", engine.client(ana.id).balance, "balance unchanged")
            }
            FundEngine.temporary().use { engine ->
                val e = assertThrows<FundException.ValidationException> { engine.subscribe(engine.ana().id, 1, bad) }
                assertEquals(reason(bad, Locale.ES), e.reason, "subscribe($bad) on a Spanish engine")
            }
            // An English configuration: its amounts are refused in English too.
            val settings = listOf(
                EngineConfig(locale = Locale.EN, initialBalance = bad),
                EngineConfig(locale = Locale.EN, funds = listOf(Fund(1, "F", bad, Category.FIC, true))),
            )
            for (config in settings) {
                val e = assertThrows<FundException.ValidationException> { FundEngine.withConfig(config = config).close() }
                assertEquals(english, e.reason, "configuration amount $bad")
            }
        }
    }

    // ------------------------------------------------------------ exceptions
    test("exceptions: every FundException case carries its code and message") {
        val config = EngineConfig(
            initialBalance = dec("290000"),
            funds = listOf(
                Fund(1, "FPV_BTG_PACTUAL_RECAUDADORA", dec("75000"), Category.FPV, true),
                Fund(3, "DEUDAPRIVADA", dec("50000"), Category.FIC, true),
                Fund(4, "FDO-ACCIONES", dec("250000"), Category.FIC, true),
                Fund(7, "FONDO_CERRADO", dec("10000"), Category.FIC, false),
            ),
        )
        FundEngine.withConfig(config = config).use { engine ->
            val ana = engine.ana()
            val v = assertThrows<FundException.ValidationException> {
                engine.registerClient("Bo", "bo-at-example.com", "+573001234567", Channel.EMAIL)
            }
            assertEquals("VALIDATION_ERROR", v.code, "validation code")
            assertEquals("email", v.field, "validation field")
            val cursor = assertThrows<FundException.ValidationException> { engine.history(ana.id, 10, "not-a-cursor") }
            assertEquals("before", cursor.field, "a malformed cursor is bad input")
            check(v.reason.startsWith("email")) { "validation reason names the field: ${v.reason}" }

            val below = assertThrows<FundException.BelowMinimum> { engine.subscribe(ana.id, 1, dec("1000")) }
            assertEquals("BELOW_MINIMUM", below.code, "code")
            assertEquals("El monto mínimo para vincularse al fondo FPV_BTG_PACTUAL_RECAUDADORA es COP \$75.000", below.reason, "message")

            engine.subscribe(ana.id, 3, idempotencyKey = "k-1")
            val insufficient = assertThrows<FundException.InsufficientBalance> { engine.subscribe(ana.id, 4) }
            assertEquals("INSUFFICIENT_BALANCE", insufficient.code, "code")
            assertEquals("No tiene saldo disponible para vincularse al fondo FDO-ACCIONES", insufficient.reason, "message")

            val already = assertThrows<FundException.AlreadySubscribed> { engine.subscribe(ana.id, 3) }
            assertEquals("ALREADY_SUBSCRIBED", already.code, "code")
            assertEquals("Ya tiene una suscripción activa al fondo DEUDAPRIVADA", already.reason, "message")

            val notSub = assertThrows<FundException.NotSubscribed> { engine.cancel(ana.id, 1) }
            assertEquals("NOT_SUBSCRIBED", notSub.code, "code")
            assertEquals("No tiene una suscripción activa al fondo FPV_BTG_PACTUAL_RECAUDADORA", notSub.reason, "message")

            val inactive = assertThrows<FundException.FundInactive> { engine.subscribe(ana.id, 7) }
            assertEquals("FUND_INACTIVE", inactive.code, "code")
            assertEquals("El fondo FONDO_CERRADO no recibe nuevas suscripciones", inactive.reason, "message")

            val reused = assertThrows<FundException.IdempotencyKeyReused> { engine.subscribe(ana.id, 1, idempotencyKey = "k-1") }
            assertEquals("IDEMPOTENCY_KEY_REUSED", reused.code, "code")
            assertEquals("La clave de idempotencia 'k-1' ya se usó para otra solicitud", reused.reason, "message")

            val noClient = assertThrows<FundException.ClientNotFound> { engine.client("not-an-id") }
            assertEquals("CLIENT_NOT_FOUND", noClient.code, "code")
            assertEquals("No existe el cliente not-an-id", noClient.reason, "message")

            val noFund = assertThrows<FundException.FundNotFound> { engine.fund(99) }
            assertEquals("FUND_NOT_FOUND", noFund.code, "code")
            assertEquals("No existe el fondo 99", noFund.reason, "message")

            val noTx = assertThrows<FundException.TransactionNotFound> { engine.transaction("01934b5e-0000-7000-8000-000000000000") }
            assertEquals("TRANSACTION_NOT_FOUND", noTx.code, "code")
            assertEquals("No existe la transacción 01934b5e-0000-7000-8000-000000000000", noTx.reason, "message")

            // The failures changed nothing: one subscription, balance 290000 - 50000.
            assertMoney("240000.00", engine.client(ana.id).balance, "balance")
            assertEquals(1, engine.history(ana.id, 50).size, "history size")

            // The generic accessors and Throwable.message work on the base type.
            val asBase: FundException = insufficient
            assertEquals("INSUFFICIENT_BALANCE", asBase.code, "base code")
            assertEquals(insufficient.reason, asBase.reason, "base reason")
            check(asBase.message!!.contains("INSUFFICIENT_BALANCE")) { "Throwable.message: ${asBase.message}" }
        }
    }

    test("exceptions: OUTCOME_UNKNOWN is a case of its own, read like every other") {
        // The PostgreSQL store's answer when a change's outcome could not be learned in time; the
        // mobile engine's embedded store never gives it, but the family is the codes of
        // docs/errors.md, so an app's `when` over FundException names it.
        val e: FundException = FundException.OutcomeUnknown("OUTCOME_UNKNOWN", "puede haberse guardado", "puede haberse guardado", "it may have been saved")
        assertEquals("OUTCOME_UNKNOWN", e.code, "code on the base type")
        assertEquals("puede haberse guardado", e.reason, "reason on the base type")
        check(e.message!!.contains("OUTCOME_UNKNOWN")) { "Throwable.message: ${e.message}" }
        val action = when (e) {
            is FundException.OutcomeUnknown -> "repeat with the same idempotency key"
            is FundException.StorageException -> "nothing was saved: try again later"
            else -> "other"
        }
        assertEquals("repeat with the same idempotency key", action, "a when over the cases")
    }

    test("exceptions: STORAGE_ERROR when the store cannot be opened") {
        val dir = tempDir("fundcore-locked")
        FundEngine(dir.path).use {
            // sled locks its directory: a second engine on the same path in this process fails.
            val e = assertThrows<FundException.StorageException> { FundEngine(dir.path) }
            assertEquals("STORAGE_ERROR", e.code, "code")
            // The text is the core's (tested there); here: it is a message, not the code.
            check(e.reason.isNotBlank() && e.reason != e.code) { "message: ${e.reason}" }
        }
        val file = File.createTempFile("fundcore-not-a-dir", ".txt").also { it.deleteOnExit() }
        val e = assertThrows<FundException.StorageException> { FundEngine(file.path) }
        assertEquals("STORAGE_ERROR", e.code, "code for a regular file")
    }

    test("exceptions: messages follow the configured locale") {
        FundEngine.withConfig(config = EngineConfig(locale = Locale.EN, initialBalance = dec("100000"))).use { engine ->
            assertEquals(Locale.EN, engine.locale(), "locale")
            val ana = engine.ana()
            val e = assertThrows<FundException.InsufficientBalance> { engine.subscribe(ana.id, 2) }
            assertEquals("Insufficient available balance to subscribe to fund FPV_BTG_PACTUAL_ECOPETROL", e.reason, "message")
            // Every locale's text too, for an app that answers each reader in theirs.
            val base: FundException = e
            assertEquals(e.reason, base.reasonEn, "reasonEn on the base type")
            assertEquals("No tiene saldo disponible para vincularse al fondo FPV_BTG_PACTUAL_ECOPETROL", base.reasonEs, "reasonEs")
            val nf = assertThrows<FundException.FundNotFound> { engine.fund(42) }
            assertEquals("Fund 42 not found", nf.reason, "message")
        }
    }

    // ------------------------------------------------------------ signed integers (Java-callable API)
    test("integers: a negative or too large fund id is FUND_NOT_FOUND with the id as given") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val negative = assertThrows<FundException.FundNotFound> { engine.subscribe(ana.id, -3) }
            assertEquals("FUND_NOT_FOUND", negative.code, "code")
            assertEquals("No existe el fondo -3", negative.reason, "message names the id as given")
            val tooLarge = assertThrows<FundException.FundNotFound> { engine.cancel(ana.id, 4_294_967_296L) }
            assertEquals("No existe el fondo 4294967296", tooLarge.reason, "beyond the core's u32")
            assertEquals("No existe el fondo ${Long.MIN_VALUE}", assertThrows<FundException.FundNotFound> { engine.fund(Long.MIN_VALUE) }.reason, "fund()")
            // The largest id the core holds is looked up by the core itself.
            assertEquals("No existe el fondo 4294967295", assertThrows<FundException.FundNotFound> { engine.fund(4_294_967_295L) }.reason, "largest u32")
            assertMoney("500000.00", engine.client(ana.id).balance, "nothing spent")
            assertEquals(0, engine.history(ana.id, 50).size, "nothing recorded")
        }
        FundEngine.withConfig(config = EngineConfig(locale = Locale.EN)).use { engine ->
            assertEquals("Fund -3 not found", assertThrows<FundException.FundNotFound> { engine.fund(-3) }.reason, "English")
        }
    }

    test("integers: fund ids are Long and keep the whole u32 range of the core") {
        val config = EngineConfig(funds = listOf(Fund(4_294_967_295L, "FONDO_MAXIMO", dec("1000"), Category.FIC, true)))
        FundEngine.withConfig(config = config).use { engine ->
            val ana = engine.ana()
            val tx = engine.subscribe(ana.id, 4_294_967_295L)
            assertEquals(4_294_967_295L, tx.fundId, "transaction fund id")
            assertEquals(4_294_967_295L, engine.funds().single().id, "catalogue id")
            assertEquals(listOf(4_294_967_295L), engine.subscriptions(ana.id).map { it.fundId }, "subscription fund id")
        }
    }

    test("integers: a history limit outside 1..200, negative included, is the core's VALIDATION_ERROR on limit") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            engine.subscribe(ana.id, 1)
            val coreAnswer = assertThrows<FundException.ValidationException> { engine.history(ana.id, 201) }
            assertEquals("limit: el límite debe estar entre 1 y 200", coreAnswer.reason, "the core's message")
            for (limit in listOf(-1, Int.MIN_VALUE, 0)) {
                val e = assertThrows<FundException.ValidationException> { engine.history(ana.id, limit) }
                assertEquals("VALIDATION_ERROR", e.code, "code for $limit")
                assertEquals("limit", e.field, "field for $limit")
                assertEquals(coreAnswer.reason, e.reason, "message for $limit")
            }
            assertEquals(1, engine.history(ana.id, 200).size, "200 is allowed")
            // Dispatch and requeue counts: 0 or less does nothing, as in the core.
            val untouched = object : Notifier {
                override fun send(notification: Notification) = fail("a negative limit must not deliver")
            }
            assertEquals(DispatchReport(0, 0, 0), engine.dispatchNotifications(untouched, -1), "negative dispatch limit")
            assertEquals(NotificationStatus.PENDING, engine.notifications(ana.id).single().status, "still pending")
            assertEquals(0, engine.retryFailedNotifications(-1), "negative requeue limit")
        }
    }

    test("integers: negative settings are the core's configuration VALIDATION_ERROR on their field") {
        val fund = { id: Long -> Fund(id, "F", dec("1000"), Category.FIC, true) }
        val cases = listOf(
            EngineConfig(maxAttempts = -1) to "max_attempts",
            EngineConfig(retryBaseDelayMs = -1) to "retry_base_delay_ms",
            EngineConfig(retryMaxDelayMs = -1) to "retry_max_delay_ms",
            EngineConfig(cacheCapacityBytes = -1) to "cache_capacity_bytes",
            EngineConfig(durability = Durability.Periodic(-1)) to "interval_ms",
            EngineConfig(funds = listOf(fund(-1))) to "funds",
            EngineConfig(funds = listOf(fund(4_294_967_296L))) to "funds",
        )
        for ((config, field) in cases) {
            val e = assertThrows<FundException.ValidationException> { FundEngine.withConfig(config = config).close() }
            assertEquals(field, e.field, "field")
            assertEquals("$field: valor de configuración fuera de rango", e.reason, "the core's message for $field")
        }
    }

    // ------------------------------------------------------------ idempotency, history
    test("idempotency: the same key returns the original transaction and changes nothing") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val first = engine.subscribe(ana.id, 1, dec("80000"), "k-1")
            val again = engine.subscribe(ana.id, 1, dec("80000"), "k-1")
            assertEquals(first, again, "replayed transaction")
            assertEquals("k-1", first.idempotencyKey, "key stored")
            assertMoney("420000.00", engine.client(ana.id).balance, "balance")
            assertEquals(1, engine.notifications(ana.id).size, "one notification")
        }
    }

    test("history: newest first, paged with the exclusive cursor; subscriptions and transaction lookup") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val t1 = engine.subscribe(ana.id, 1)
            val t2 = engine.subscribe(ana.id, 3)
            val t3 = engine.cancel(ana.id, 1)
            assertEquals(TransactionKind.CANCELLATION, t3.kind, "kind")
            assertMoney("75000.00", t3.amount, "refund is the stored amount")
            assertEquals(listOf(t3, t2, t1), engine.history(ana.id, 50), "history")
            val page1 = engine.history(ana.id, 2)
            assertEquals(listOf(t3, t2), page1, "page 1")
            assertEquals(listOf(t1), engine.history(ana.id, 2, page1.last().id), "page 2")
            assertEquals(t2, engine.transaction(t2.id), "lookup")
            val subs = engine.subscriptions(ana.id)
            assertEquals(listOf(3L), subs.map { it.fundId }, "active subscriptions")
            assertEquals(t2.id, subs[0].transactionId, "opening transaction")
            assertThrows<FundException.ValidationException> { engine.history(ana.id, 0) }
        }
    }

    // ------------------------------------------------------------ notifier
    test("notifier: a Kotlin notifier receives each notification and success marks it delivered") {
        FundEngine.temporary().use { engine ->
            val luis = engine.registerClient("Luis", "luis@example.com", "+573109876543", Channel.SMS)
            val tx = engine.subscribe(luis.id, 2)
            val notifier = AcceptingNotifier()
            val report = engine.dispatchNotifications(notifier, 100)
            assertEquals(DispatchReport(1, 0, 0), report, "report")
            assertEquals(1, notifier.sent.size, "sent")
            val sent = notifier.sent[0]
            assertEquals(tx.id, sent.transactionId, "transaction id")
            assertEquals(Channel.SMS, sent.channel, "channel")
            assertEquals("+573109876543", sent.recipient, "recipient")
            check(sent.body.length <= 160) { "SMS body fits 160 characters: ${sent.body.length}" }
            check(sent.body.contains("FPV_BTG_PACTUAL_ECOPETROL")) { "body names the fund: ${sent.body}" }
            val stored = engine.notifications(luis.id).single()
            assertEquals(NotificationStatus.DELIVERED, stored.status, "status")
            assertEquals(1, stored.attempts, "attempts")
            check(stored.deliveredAt != null) { "deliveredAt set" }
            assertEquals(DispatchReport(0, 0, 0), engine.dispatchNotifications(notifier, 100), "nothing left")
        }
    }

    test("notifier: DeliveryException.Retryable is retried with backoff, then delivered") {
        val config = EngineConfig(retryBaseDelayMs = 1L, retryMaxDelayMs = 1L, maxAttempts = 3)
        FundEngine.withConfig(config = config).use { engine ->
            val ana = engine.ana()
            engine.subscribe(ana.id, 1)
            val calls = AtomicInteger()
            val flaky = object : Notifier {
                override fun send(notification: Notification) {
                    if (calls.incrementAndGet() == 1) throw DeliveryException.Retryable("smtp down")
                }
            }
            assertEquals(DispatchReport(0, 1, 0), engine.dispatchNotifications(flaky, 100), "first run")
            val pending = engine.notifications(ana.id).single()
            assertEquals(NotificationStatus.PENDING, pending.status, "status")
            assertEquals(1, pending.attempts, "attempts")
            check(pending.lastError!!.contains("smtp down")) { "last error: ${pending.lastError}" }
            Thread.sleep(20)
            assertEquals(DispatchReport(1, 0, 0), engine.dispatchNotifications(flaky, 100), "second run")
            val delivered = engine.notifications(ana.id).single()
            assertEquals(NotificationStatus.DELIVERED, delivered.status, "status")
            assertEquals(2, delivered.attempts, "attempts")
            assertEquals(2, calls.get(), "calls")
        }
    }

    test("notifier: retryable failures up to maxAttempts mark the entry failed; any other exception is retryable") {
        val config = EngineConfig(retryBaseDelayMs = 1L, retryMaxDelayMs = 1L, maxAttempts = 2)
        FundEngine.withConfig(config = config).use { engine ->
            val ana = engine.ana()
            engine.subscribe(ana.id, 1)
            val broken = object : Notifier {
                override fun send(notification: Notification) { throw IllegalStateException("gateway exploded") }
            }
            assertEquals(DispatchReport(0, 1, 0), engine.dispatchNotifications(broken, 100), "first")
            Thread.sleep(20)
            assertEquals(DispatchReport(0, 0, 1), engine.dispatchNotifications(broken, 100), "second")
            val failed = engine.notifications(ana.id).single()
            assertEquals(NotificationStatus.FAILED, failed.status, "status")
            assertEquals(2, failed.attempts, "attempts")
            check(failed.lastError!!.contains("gateway exploded")) { "last error: ${failed.lastError}" }
            // Requeue and deliver.
            assertEquals(1, engine.retryFailedNotifications(10), "requeued")
            assertEquals(DispatchReport(1, 0, 0), engine.dispatchNotifications(AcceptingNotifier(), 100), "after requeue")
        }
    }

    test("notifier: DeliveryException.Permanent fails the entry at once and keeps the transaction") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val tx = engine.subscribe(ana.id, 3)
            val bouncing = object : Notifier {
                override fun send(notification: Notification) { throw DeliveryException.Permanent("mailbox does not exist") }
            }
            assertEquals(DispatchReport(0, 0, 1), engine.dispatchNotifications(bouncing, 100), "report")
            val failed = engine.notifications(ana.id).single()
            assertEquals(NotificationStatus.FAILED, failed.status, "status")
            assertEquals(1, failed.attempts, "attempts")
            check(failed.lastError!!.contains("mailbox does not exist")) { "last error: ${failed.lastError}" }
            assertEquals(tx, engine.transaction(tx.id), "transaction kept")
            assertMoney("450000.00", engine.client(ana.id).balance, "balance kept")
            assertEquals(DispatchReport(0, 0, 0), engine.dispatchNotifications(AcceptingNotifier(), 100), "not retried")
        }
    }

    // ------------------------------------------------------------ threads
    test("threads: 16 Kotlin threads racing on one client never overdraw nor double-refund") {
        FundEngine.temporary().use { engine ->
            val ana = engine.ana()
            val threads = 16
            val pool = Executors.newFixedThreadPool(threads)
            val start = CountDownLatch(1)
            val subscribed = AtomicInteger()
            val refused = AtomicInteger()
            // Everyone subscribes to fund 4 (250000) then tries to cancel it.
            val futures = (0 until threads).map { i ->
                pool.submit<Unit> {
                    start.await()
                    try {
                        engine.subscribe(ana.id, 4)
                        subscribed.incrementAndGet()
                    } catch (e: FundException.AlreadySubscribed) {
                        refused.incrementAndGet()
                    }
                }
            }
            start.countDown()
            futures.forEach { it.get(60, TimeUnit.SECONDS) }
            assertEquals(1, subscribed.get(), "exactly one subscription")
            assertEquals(threads - 1, refused.get(), "the others ALREADY_SUBSCRIBED")

            val cancelStart = CountDownLatch(1)
            val refunds = AtomicInteger()
            val cancels = (0 until threads).map {
                pool.submit<Unit> {
                    cancelStart.await()
                    try {
                        engine.cancel(ana.id, 4)
                        refunds.incrementAndGet()
                    } catch (e: FundException.NotSubscribed) {
                    }
                }
            }
            cancelStart.countDown()
            cancels.forEach { it.get(60, TimeUnit.SECONDS) }
            pool.shutdown()
            assertEquals(1, refunds.get(), "exactly one refund")
            assertMoney("500000.00", engine.client(ana.id).balance, "balance restored once")
        }
    }

    test("threads: many clients and funds in parallel keep balance + subscriptions = initial balance") {
        FundEngine.withConfig(config = EngineConfig(durability = Durability.Periodic(200L))).use { engine ->
            val clients = (0 until 4).map {
                engine.registerClient("C$it", "c$it@example.com", "+57300123456$it", Channel.EMAIL)
            }
            val threads = 8
            val pool = Executors.newFixedThreadPool(threads)
            val start = CountDownLatch(1)
            val futures = (0 until threads).map { t ->
                pool.submit<Unit> {
                    start.await()
                    val rnd = java.util.Random(t.toLong())
                    repeat(40) {
                        val client = clients[rnd.nextInt(clients.size)]
                        val fund = (1 + rnd.nextInt(5)).toLong()
                        try {
                            if (rnd.nextBoolean()) engine.subscribe(client.id, fund) else engine.cancel(client.id, fund)
                        } catch (e: FundException.AlreadySubscribed) {
                        } catch (e: FundException.NotSubscribed) {
                        } catch (e: FundException.InsufficientBalance) {
                        }
                    }
                }
            }
            start.countDown()
            futures.forEach { it.get(120, TimeUnit.SECONDS) }
            pool.shutdown()
            for (c in clients) {
                val balance = engine.client(c.id).balance
                check(balance.signum() >= 0) { "negative balance $balance" }
                val invested = engine.subscriptions(c.id).fold(BigDecimal.ZERO) { acc, s -> acc + s.amount }
                check((balance + invested).compareTo(dec("500000")) == 0) {
                    "${c.name}: balance $balance + invested $invested != 500000"
                }
                // Replaying the history gives the balance.
                val history = engine.history(c.id, 200)
                val replay = history.fold(dec("500000")) { acc, tx ->
                    if (tx.kind == TransactionKind.SUBSCRIPTION) acc - tx.amount else acc + tx.amount
                }
                check(replay.compareTo(balance) == 0) { "${c.name}: replay $replay != balance $balance" }
                if (history.isNotEmpty()) assertMoney(balance.toPlainString(), history[0].balanceAfter, "latest balanceAfter")
            }
            engine.flush()
        }
    }

    // ------------------------------------------------------------ persistence
    test("persistence: close and reopen the same path gives the same state") {
        val dir = tempDir("fundcore-reopen")
        val path = File(dir, "store").path
        val (anaId, before) = FundEngine(path).use { engine ->
            val ana = engine.ana(Channel.SMS)
            engine.subscribe(ana.id, 1, dec("80000.50"), "k-1")
            engine.subscribe(ana.id, 3)
            engine.cancel(ana.id, 1)
            engine.dispatchNotifications(AcceptingNotifier(), 1)
            ana.id to listOf(
                engine.client(ana.id), engine.history(ana.id, 50), engine.subscriptions(ana.id),
                engine.notifications(ana.id),
            )
        }
        FundEngine(path).use { engine ->
            val after = listOf(
                engine.client(anaId), engine.history(anaId, 50), engine.subscriptions(anaId),
                engine.notifications(anaId),
            )
            assertEquals(before, after, "state after reopen")
            assertMoney("450000.00", engine.client(anaId).balance, "balance")
            // The idempotency record survived too.
            val replay = engine.subscribe(anaId, 1, dec("80000.50"), "k-1")
            assertEquals((before[1] as List<*>).last(), replay, "idempotent replay after reopen")
        }
    }

    test("persistence: a store keeps the rules it was created with") {
        val path = File(tempDir("fundcore-rules"), "store").path
        FundEngine.withConfig(path, EngineConfig(initialBalance = dec("100000"))).use { engine ->
            assertMoney("100000.00", engine.ana().balance, "first open")
        }
        FundEngine(path).use { engine ->
            assertMoney("100000.00", engine.ana().balance, "reopened with defaults")
        }
    }
}
