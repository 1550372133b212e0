//! The app's notifier (a foreign trait) and its adapter to the core's `Notifier` port.

use std::sync::Arc;

#[cfg(doc)]
use crate::engine::FundEngine;
use crate::types::Notification;

/// Why the app's notifier could not deliver (`DeliveryException` in Kotlin).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum DeliveryError {
    /// Try again later, with exponential backoff (server down, timeout, rate limit).
    #[error("retryable: {reason}")]
    Retryable { reason: String },
    /// Never try again: the entry is marked failed at once (recipient refused).
    #[error("permanent: {reason}")]
    Permanent { reason: String },
}

/// Any other exception thrown by the app's notifier is a retryable failure.
impl From<uniffi::UnexpectedUniFFICallbackError> for DeliveryError {
    fn from(err: uniffi::UnexpectedUniFFICallbackError) -> Self {
        // Kotlin reports the whole stack trace; the first line names the exception.
        let first_line = err.reason.lines().next().unwrap_or_default();
        DeliveryError::Retryable {
            reason: first_line.to_owned(),
        }
    }
}

/// The app's way of delivering notifications (email, SMS, push, a queue), implemented in Kotlin
/// or Swift and passed to [`FundEngine::dispatch_notifications`].
#[uniffi::export(foreign)]
pub trait Notifier: Send + Sync {
    /// Delivers one notification; may be called more than once for the same `id`
    /// (at-least-once delivery). Throw/return `DeliveryError` to report a failure.
    fn send(&self, notification: Notification) -> Result<(), DeliveryError>;
}

/// Adapts the foreign notifier to the core's port.
pub(crate) struct NotifierPort(pub(crate) Arc<dyn Notifier>);

impl fundcore::Notifier for NotifierPort {
    fn send(&self, notification: &fundcore::Notification) -> Result<(), fundcore::DeliveryError> {
        self.0
            .send(notification.clone().into())
            .map_err(|err| match err {
                DeliveryError::Retryable { reason } => fundcore::DeliveryError::Retryable(reason),
                DeliveryError::Permanent { reason } => fundcore::DeliveryError::Permanent(reason),
            })
    }
}
