//! The ledger's public records: transactions (subscriptions and cancellations) and active
//! subscriptions.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, FundId, TransactionId};
use crate::time::Timestamp;

named_enum! {
    /// What a transaction did.
    #[derive(strum::EnumString)]
    pub enum TransactionKind in "lowercase" {
        /// Money moved from the balance into a fund.
        Subscription,
        /// A subscription ended and its amount was refunded.
        Cancellation,
    }
}

impl TransactionKind {
    /// The kind named `text` (ignoring case and surrounding white space), as a caller's filter
    /// gives it: `VALIDATION_ERROR` on `kind` for any other text.
    pub fn parse(text: &str) -> crate::Result<Self> {
        crate::enum_names::variant_named(text)
            .ok_or(crate::Error::invalid("kind", crate::Invalid::Kind))
    }
}

/// One committed movement of money. A cancellation's `amount` is the refund.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// UUIDv7: unique and time-ordered.
    pub id: TransactionId,
    /// Whose balance moved.
    pub client_id: ClientId,
    /// Which fund.
    pub fund_id: FundId,
    /// The fund's name when the transaction happened.
    pub fund_name: String,
    /// Subscription or cancellation.
    pub kind: TransactionKind,
    /// Money moved: subscribed, or refunded.
    pub amount: Decimal,
    /// The client's balance right after this transaction.
    pub balance_after: Decimal,
    /// When it was committed.
    pub created_at: Timestamp,
    /// The caller's idempotency key, if one was given.
    pub idempotency_key: Option<String>,
}

/// An active subscription of a client to a fund.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The client.
    pub client_id: ClientId,
    /// The fund.
    pub fund_id: FundId,
    /// The fund's name.
    pub fund_name: String,
    /// The subscribed amount; exactly this is refunded on cancellation.
    pub amount: Decimal,
    /// The transaction that opened it.
    pub transaction_id: TransactionId,
    /// When it was opened.
    pub subscribed_at: Timestamp,
}
