//! The ledger: transactions (subscriptions and cancellations), active subscriptions and
//! the idempotency records that make retried requests safe.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Invalid, Result};
use crate::ids::{ClientId, FundId, TransactionId};
use crate::outbox::Notice;
use crate::time::Timestamp;

/// A transaction as stored: the record and the state of the notification about it (none for
/// a cancellation when those are not notified). One key per transaction keeps a subscribe or
/// cancel to as few new store keys as possible.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LedgerEntry {
    /// First, so [`LedgerEntry::transaction_in`] can read it alone.
    pub transaction: Transaction,
    pub notice: Option<Notice>,
}

impl LedgerEntry {
    /// The transaction of a stored entry, without decoding its notification.
    pub(crate) fn transaction_in(bytes: &[u8]) -> Result<Transaction> {
        crate::store::decode_first(bytes)
    }
}

/// What a transaction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransactionKind {
    /// Money moved from the balance into a fund.
    Subscription,
    /// A subscription ended and its amount was refunded.
    Cancellation,
}

impl TransactionKind {
    /// `subscription` or `cancellation`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Subscription => "subscription",
            TransactionKind::Cancellation => "cancellation",
        }
    }
}

impl fmt::Display for TransactionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

/// What an idempotency key was first used for, so a replay can be recognised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdempotencyRecord {
    pub request: Request,
    pub transaction_id: TransactionId,
}

/// A money-moving request as the caller stated it (amount normalized to 2 decimals).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Request {
    Subscribe {
        fund_id: FundId,
        amount: Option<Decimal>,
    },
    Cancel {
        fund_id: FundId,
    },
}

const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// Checks an idempotency key: 1 to 200 characters, none of them control characters.
pub(crate) fn validate_idempotency_key(key: &str) -> Result<&str> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_IDEMPOTENCY_KEY_CHARS || key.chars().any(char::is_control) {
        return Err(Error::invalid("idempotency_key", Invalid::IdempotencyKey));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Channel, Client};
    use crate::ids::{ClientId, NotificationId};
    use crate::locale::Locale;
    use crate::money::cop;
    use uuid::Uuid;

    #[test]
    fn the_transaction_of_a_stored_entry_reads_alone_and_whole() {
        let client = Client {
            id: ClientId(Uuid::now_v7()),
            name: "Ana".into(),
            email: "ana@example.com".into(),
            phone: "+573001234567".into(),
            channel: Channel::Email,
            balance: cop("425000"),
            created_at: Timestamp::from_unix_micros(1),
        };
        let transaction = Transaction {
            id: TransactionId(Uuid::now_v7()),
            client_id: client.id,
            fund_id: 1,
            fund_name: "FPV_BTG_PACTUAL_RECAUDADORA".into(),
            kind: TransactionKind::Subscription,
            amount: cop("75000"),
            balance_after: cop("425000"),
            created_at: Timestamp::from_unix_micros(2),
            idempotency_key: Some("k-1".into()),
        };
        let notice = Notice::pending(
            NotificationId(Uuid::now_v7()),
            &client,
            Locale::En,
            transaction.created_at,
        );
        for notice in [Some(notice), None] {
            let entry = LedgerEntry {
                transaction: transaction.clone(),
                notice,
            };
            let bytes = crate::store::encode(&entry).unwrap();
            assert_eq!(LedgerEntry::transaction_in(&bytes).unwrap(), transaction);
            assert_eq!(crate::store::decode::<LedgerEntry>(&bytes).unwrap(), entry);
        }
        assert!(LedgerEntry::transaction_in(&[1, 2, 3]).is_err());
    }
}
