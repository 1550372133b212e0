// Runs the shared conformance scenarios (core/tests/scenarios/*.json, format in
// docs/invariants.md) through the Kotlin API: every call goes through the generated bindings.
package fundcore.tests

import com.fundcore.*
import java.io.File
import java.math.BigDecimal
import java.time.Instant
import java.time.ZoneOffset
import java.time.format.DateTimeFormatter

private val RFC3339 = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'").withZone(ZoneOffset.UTC)

private fun time(at: Instant?): String? = at?.let { RFC3339.format(it) }

private fun num(n: Number): BigDecimal = BigDecimal(n.toString())

/** The record's JSON shape of docs/records.md (money as strings with 2 decimals, lowercase enums). */
fun toJson(value: Any?): Any? = when (value) {
    null -> null
    is List<*> -> value.map { toJson(it) }
    is Fund -> mapOf(
        "id" to num(value.id.toLong()), "name" to value.name, "minimum" to value.minimum.toPlainString(),
        "category" to value.category.name, "active" to value.active,
    )
    is Client -> mapOf(
        "id" to value.id, "name" to value.name, "email" to value.email, "phone" to value.phone,
        "channel" to value.channel.name.lowercase(), "balance" to value.balance.toPlainString(),
        "created_at" to time(value.createdAt),
    )
    is Subscription -> mapOf(
        "client_id" to value.clientId, "fund_id" to num(value.fundId.toLong()), "fund_name" to value.fundName,
        "amount" to value.amount.toPlainString(), "transaction_id" to value.transactionId,
        "subscribed_at" to time(value.subscribedAt),
    )
    is Transaction -> mapOf(
        "id" to value.id, "client_id" to value.clientId, "fund_id" to num(value.fundId.toLong()),
        "fund_name" to value.fundName, "kind" to value.kind.name.lowercase(),
        "amount" to value.amount.toPlainString(), "balance_after" to value.balanceAfter.toPlainString(),
        "created_at" to time(value.createdAt), "idempotency_key" to value.idempotencyKey,
    )
    is Notification -> mapOf(
        "id" to value.id, "client_id" to value.clientId, "transaction_id" to value.transactionId,
        "channel" to value.channel.name.lowercase(), "recipient" to value.recipient,
        "subject" to value.subject, "body" to value.body, "status" to value.status.name.lowercase(),
        "attempts" to num(value.attempts.toLong()), "last_error" to value.lastError,
        "created_at" to time(value.createdAt), "delivered_at" to time(value.deliveredAt),
        "next_attempt_at" to time(value.nextAttemptAt),
    )
    is AuditEvent -> mapOf(
        "id" to value.id, "at" to time(value.at), "actor" to value.actor,
        "action" to value.action.name.lowercase(), "target" to value.target,
        "before" to fieldsJson(value.before), "after" to fieldsJson(value.after),
        "request_id" to value.requestId,
    )
    is ClientPage -> mapOf("items" to toJson(value.items), "next" to value.next)
    is AuditEventPage -> mapOf("items" to toJson(value.items), "next" to value.next)
    is DispatchReport -> mapOf(
        "delivered" to num(value.delivered.toLong()), "retried" to num(value.retried.toLong()),
        "failed" to num(value.failed.toLong()),
    )
    else -> throw IllegalArgumentException("no JSON shape for ${value::class.simpleName}")
}

/**
 * An audit event's changed fields in their JSON shape: the binding gives every value as text;
 * `active` is the one field of §3's records that is a boolean (`"true"` / `"false"`).
 */
private fun fieldsJson(fields: Map<String, String>): Map<String, Any?> = fields.mapValues { (field, text) ->
    if (field == "active") text.toBooleanStrict() else text
}

/** Subset match of docs/invariants.md; returns null when it matches, else what differs. */
fun mismatch(expected: Any?, actual: Any?, path: String = "$"): String? = when (expected) {
    is Map<*, *> -> {
        if (actual !is Map<*, *>) "$path: expected an object, got $actual"
        else expected.entries.firstNotNullOfOrNull { (k, v) ->
            if (!actual.containsKey(k)) "$path.$k: missing in $actual" else mismatch(v, actual[k], "$path.$k")
        }
    }
    is List<*> -> {
        if (actual !is List<*>) "$path: expected a list, got $actual"
        else if (actual.size != expected.size) "$path: expected ${expected.size} items, got ${actual.size}: $actual"
        else expected.indices.firstNotNullOfOrNull { mismatch(expected[it], actual[it], "$path[$it]") }
    }
    is BigDecimal -> if (actual is BigDecimal && actual.compareTo(expected) == 0) null
        else "$path: expected $expected, got $actual"
    else -> if (expected == actual) null else "$path: expected <$expected>, got <$actual>"
}

/** A notifier that accepts everything (the scenarios' `dispatch`). */
class AcceptingNotifier : Notifier {
    val sent = java.util.Collections.synchronizedList(mutableListOf<Notification>())
    override fun send(notification: Notification) {
        sent.add(notification)
    }
}

private class ScenarioRun(val file: File) {
    val scenario = Json.parse(file.readText()) as Map<*, *>
    val saved = HashMap<String, Any?>()
    lateinit var engine: FundEngine

    fun resolve(value: Any?): Any? = when (value) {
        is String -> if (value.startsWith("$") && saved.containsKey(value.substring(1))) {
            (saved[value.substring(1)] as Map<*, *>)["id"]
        } else value
        is Map<*, *> -> value.mapValues { resolve(it.value) }
        is List<*> -> value.map { resolve(it) }
        else -> value
    }

    fun config(json: Map<*, *>?): EngineConfig {
        if (json == null) return EngineConfig()
        val known = setOf("initial_balance", "locale", "notify_on_cancel", "funds", "max_attempts")
        val unknown = json.keys - known
        check(unknown.isEmpty()) { "unknown config keys $unknown (teach the Kotlin runner)" }
        return EngineConfig(
            initialBalance = (json["initial_balance"] as String?)?.let { parseAmount(it) },
            locale = (json["locale"] as String?)?.let { Locale.valueOf(it.uppercase()) },
            notifyOnCancel = json["notify_on_cancel"] as Boolean?,
            maxAttempts = (json["max_attempts"] as BigDecimal?)?.intValueExact(),
            funds = (json["funds"] as List<*>?)?.map {
                val f = it as Map<*, *>
                Fund(
                    id = (f["id"] as BigDecimal).longValueExact(),
                    name = f["name"] as String,
                    minimum = parseAmount(f["minimum"] as String),
                    category = Category.valueOf(f["category"] as String),
                    active = f["active"] as Boolean? ?: true,
                )
            },
        )
    }

    fun call(op: String, a: Map<*, *>): Any? {
        fun str(k: String) = a[k] as String
        fun optStr(k: String) = a[k] as String?
        fun fundId(k: String) = (a[k] as BigDecimal).longValueExact()
        fun count(k: String) = (a[k] as BigDecimal).intValueExact()
        val locale = engine.locale()
        fun optAmount(k: String) = optStr(k)?.let { parseAmount(it, locale) }
        fun optChannel(k: String) = optStr(k)?.let { parseChannel(it, locale) }
        return when (op) {
            "funds" -> engine.funds()
            "fund" -> engine.fund(fundId("fund_id"))
            "register_client" -> engine.registerClient(
                str("name"), str("email"), str("phone"), parseChannel(str("channel"), locale),
            )
            "client" -> engine.client(str("client"))
            "subscribe" -> engine.subscribe(
                str("client"), fundId("fund_id"), optStr("amount")?.let { parseAmount(it, locale) },
                optStr("idempotency_key"),
            )
            "cancel" -> engine.cancel(str("client"), fundId("fund_id"), optStr("idempotency_key"))
            "subscriptions" -> engine.subscriptions(str("client"))
            "history" -> engine.history(str("client"), count("limit"), optStr("before"))
            "transaction" -> engine.transaction(str("id"))
            "notifications" -> engine.notifications(str("client"))
            "dispatch" -> engine.dispatchNotifications(AcceptingNotifier(), count("limit"))
            "create_fund" -> engine.createFund(
                fundId("fund_id"), str("name"), parseAmount(str("minimum"), locale),
                Category.valueOf(str("category")), str("actor"), optStr("request_id"),
            )
            "update_fund" -> engine.updateFund(
                fundId("fund_id"), name = optStr("name"), minimum = optAmount("minimum"),
                active = a["active"] as Boolean?, actor = str("actor"), requestId = optStr("request_id"),
            )
            "update_client" -> engine.updateClient(
                str("client"), name = optStr("name"), email = optStr("email"), phone = optStr("phone"),
                channel = optChannel("channel"), actor = str("actor"), requestId = optStr("request_id"),
            )
            "clients" -> engine.clients(count("limit"), optStr("before"))
            "audit_events" -> engine.auditEvents(count("limit"), optStr("before"))
            else -> fail("unknown op '$op'")
        }
    }

    fun run() {
        engine = FundEngine.withConfig(null, config(scenario["config"] as Map<*, *>?))
        try {
            val steps = scenario["steps"] as List<*>
            check(steps.isNotEmpty()) { "no steps" }
            for ((i, s) in steps.withIndex()) {
                val step = s as Map<*, *>
                val op = step["op"] as String
                val where = "step ${i + 1} ($op)"
                val args = resolve(step["args"] ?: emptyMap<String, Any?>()) as Map<*, *>
                val expectError = step["expect_error"] as Map<*, *>?
                val result = try {
                    toJson(call(op, args))
                } catch (e: FundException) {
                    if (expectError == null) fail("$where: unexpected ${e.code}: ${e.reason}")
                    assertEquals(expectError["code"], e.code, "$where code")
                    expectError["message"]?.let { assertEquals(it, e.reason, "$where message") }
                    continue
                }
                if (expectError != null) fail("$where: expected ${expectError["code"]}, got $result")
                step["expect"]?.let { expected ->
                    mismatch(resolve(expected), result)?.let { fail("$where: $it") }
                }
                (step["save_as"] as String?)?.let { saved[it] = result }
            }
        } finally {
            engine.close()
        }
    }
}

fun registerScenarioTests(dir: File) {
    val files = dir.listFiles { f -> f.name.endsWith(".json") }?.sortedBy { it.name }.orEmpty()
    test("scenario files are present in $dir") {
        check(files.isNotEmpty()) { "no scenario files found" }
    }
    for (file in files) {
        test("scenario ${file.nameWithoutExtension}") { ScenarioRun(file).run() }
    }
}
