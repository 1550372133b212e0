#!/usr/bin/env bash
# Checks that the generated Swift and Kotlin sources expose every operation of docs/operations.md,
# the records, the error cases of docs/errors.md and the notifier interface. Swift cannot be compiled on
# this platform (no Swift toolchain): this grep-based check is what guards it here. Both Kotlin
# flavours are checked: the JVM one (compiled and tested here) and the Android one (not compiled
# here: it needs the Android SDK), which must differ only in its cleaner.
# Run after scripts/generate.sh. Exits non-zero, listing what is missing.
set -euo pipefail
cd "$(dirname "$0")/../generated"

SWIFT=swift/FundCore.swift
KOTLIN=kotlin/com/fundcore/fundcore_mobile.kt
KOTLIN_ANDROID=kotlin-android/com/fundcore/fundcore_mobile.kt
missing=0
need() { # file, fixed string
  if grep -qF -- "$2" "$1"; then return; fi
  echo "MISSING in $1: $2" >&2
  missing=$((missing + 1))
}

for f in "$SWIFT" swift/FundCoreFFI.h swift/FundCoreFFI.modulemap "$KOTLIN" "$KOTLIN_ANDROID"; do
  [ -s "$f" ] || { echo "MISSING file $f"; exit 1; }
done

# --- Swift (module FundCore)
need "$SWIFT" "open class FundEngine"
need "$SWIFT" "public convenience init(path: String)"
need "$SWIFT" "public static func temporary()"
need "$SWIFT" "public static func withConfig(path: String? = nil, config: EngineConfig? = nil)"
need "$SWIFT" "open func funds()throws  -> [Fund]"
need "$SWIFT" "open func fund(id: Int64)"
need "$SWIFT" "open func registerClient(name: String, email: String, phone: String, channel: Channel)"
need "$SWIFT" "open func client(id: String)"
need "$SWIFT" "open func subscribe(clientId: String, fundId: Int64, amount: Amount? = nil, idempotencyKey: String? = nil)"
need "$SWIFT" "open func cancel(clientId: String, fundId: Int64, idempotencyKey: String? = nil)"
need "$SWIFT" "open func subscriptions(clientId: String)"
need "$SWIFT" "open func history(clientId: String, limit: Int32, before: String? = nil)"
need "$SWIFT" "open func transaction(id: String)"
need "$SWIFT" "open func notifications(clientId: String)"
need "$SWIFT" "open func dispatchNotifications(notifier: Notifier, limit: Int32)"
need "$SWIFT" "open func retryFailedNotifications(limit: Int32)"
need "$SWIFT" "open func historyPage(clientId: String, limit: Int32, before: String? = nil, kind: TransactionKind? = nil, fundId: Int64? = nil)"
need "$SWIFT" "open func statement(clientId: String, start: Timestamp, end: Timestamp)"
need "$SWIFT" "open func failedNotifications(limit: Int32, before: String? = nil)"
need "$SWIFT" "open func verifyLedger()"
need "$SWIFT" "open func createFund(id: Int64, name: String, minimum: Amount, category: Category, actor: String, requestId: String? = nil)"
need "$SWIFT" "open func updateFund(id: Int64, name: String? = nil, minimum: Amount? = nil, active: Bool? = nil, actor: String, requestId: String? = nil)"
need "$SWIFT" "open func updateClient(clientId: String, name: String? = nil, email: String? = nil, phone: String? = nil, channel: Channel? = nil, actor: String, requestId: String? = nil)"
need "$SWIFT" "open func clients(limit: Int32, before: String? = nil)"
need "$SWIFT" "open func auditEvents(limit: Int32, before: String? = nil)"
need "$SWIFT" "open func flush()"
need "$SWIFT" "open func backup(dest: String)"
need "$SWIFT" "open func locale() -> FundLocale"
need "$SWIFT" "public protocol Notifier"
need "$SWIFT" "func send(notification: FundNotification) throws"
need "$SWIFT" "public typealias Amount = Decimal"
need "$SWIFT" "public func parseAmount(text: String"
need "$SWIFT" "public func parseChannel(text: String"
need "$SWIFT" "public func formatCop(amount: Amount)"
for record in Fund Client Subscription Transaction FundNotification DispatchReport EngineConfig \
              AuditEvent ClientPage AuditEventPage; do
  need "$SWIFT" "public struct $record:"
done
need "$SWIFT" "public let before: [String: String]"
need "$SWIFT" "public let after: [String: String]"
for e in Category Channel TransactionKind NotificationStatus FundLocale Durability AuditAction; do
  need "$SWIFT" "public enum $e"
done
# uniffi writes `public` on the line before error enums.
for e in FundError DeliveryError; do
  need "$SWIFT" "enum $e: Swift.Error"
done
for c in ValidationError BelowMinimum InsufficientBalance AlreadySubscribed NotSubscribed FundInactive \
         IdempotencyKeyReused FundAlreadyExists ClientNotFound FundNotFound TransactionNotFound StorageError \
         OutcomeUnknown; do
  need "$SWIFT" "case $c(code: String, reason: String"
done
need "$SWIFT" "case Retryable(reason: String"
need "$SWIFT" "case Permanent(reason: String"

# --- Kotlin (package com.fundcore), the same API in both flavours
check_kotlin() { # file
  local K="$1"
  need "$K" "package com.fundcore"
  need "$K" "constructor(\`path\`: kotlin.String)"
  for op in funds fund registerClient client subscribe cancel subscriptions history transaction \
            notifications dispatchNotifications retryFailedNotifications flush locale temporary withConfig \
            createFund updateFund updateClient clients auditEvents historyPage statement \
            failedNotifications verifyLedger backup; do
    need "$K" "fun \`$op\`("
  done
  need "$K" "public interface Notifier"
  need "$K" "public typealias Amount = java.math.BigDecimal"
  need "$K" "@Throws(FundException::class)override fun \`funds\`(): List<Fund>"
  need "$K" "fun \`updateFund\`(\`id\`: kotlin.Long, \`name\`: kotlin.String? = null, \`minimum\`: Amount? = null, \`active\`: kotlin.Boolean? = null, \`actor\`: kotlin.String, \`requestId\`: kotlin.String? = null)"
  for record in AuditEvent ClientPage AuditEventPage TransactionPage NotificationPage Statement \
                StatementLine LedgerReport Violation; do
    need "$K" "data class $record ("
  done
  need "$K" "val \`before\`: Map<kotlin.String, kotlin.String>"
  need "$K" "enum class AuditAction"
  need "$K" "sealed class FundException"
  for c in ValidationException BelowMinimum InsufficientBalance AlreadySubscribed NotSubscribed FundInactive \
           IdempotencyKeyReused FundAlreadyExists ClientNotFound FundNotFound TransactionNotFound StorageException \
           OutcomeUnknown; do
    need "$K" "class $c("
  done
}
check_kotlin "$KOTLIN"
check_kotlin "$KOTLIN_ANDROID"
# The flavours: Android's SystemCleaner in one, nothing of Android in the other (it runs on a JVM).
need "$KOTLIN_ANDROID" "import android.os.Build"
need "$KOTLIN_ANDROID" "android.system.SystemCleaner.cleaner()"
need "$KOTLIN" "java.lang.ref.Cleaner.create()"
if grep -nE '(^import |[^.[:alnum:]_])androidx?\.' "$KOTLIN" >&2; then
  echo "UNEXPECTED in $KOTLIN: Android classes (the JVM flavour must run on a plain JVM)" >&2
  missing=$((missing + 1))
fi

if [ "$missing" -ne 0 ]; then
  echo "check-generated: $missing declaration(s) missing" >&2
  exit 1
fi
echo "check-generated: Swift and Kotlin expose every operation, record, error case and the Notifier"
