// Hand-written companion of the generated bindings (compile it together with
// fundcore_mobile.kt), for Java code that delivers notifications.
package com.fundcore

/**
 * A [Notifier] to extend from Java: implement [deliver]. `DeliveryException` is a checked
 * exception in Java and the generated `Notifier.send` declares none, so a Java class that
 * implements [Notifier] itself cannot throw `DeliveryException.Retryable` or
 * `DeliveryException.Permanent`; [deliver] declares it. Kotlin code implements [Notifier].
 */
abstract class JavaNotifier : Notifier {
    /** Delivers one notification: return for success, throw [DeliveryException] otherwise. */
    @Throws(DeliveryException::class)
    abstract fun deliver(notification: Notification)

    final override fun send(notification: Notification) = deliver(notification)
}
