//! The audit trail: one event per administrative change (a fund created or updated, a client's
//! contact data changed), written in the same store transaction as the change, never altered.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Invalid, Result};
use crate::ids::AuditEventId;
use crate::limits::{MAX_ACTOR_CHARS, MAX_REQUEST_ID_CHARS};
use crate::time::Timestamp;

named_enum! {
    /// What an administrative change did.
    #[derive(strum::EnumString)]
    pub enum AuditAction in "snake_case" {
        /// A fund was added to the catalogue.
        FundCreated,
        /// A fund's name, minimum or active flag changed.
        FundUpdated,
        /// A client's name, email, phone or channel changed.
        ClientUpdated,
    }
}

/// One administrative change, as it was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// UUIDv7: unique and in the order the changes happened.
    pub id: AuditEventId,
    /// When the change committed.
    pub at: Timestamp,
    /// Who asked for it (the caller says; the REST host passes the token's subject).
    pub actor: String,
    /// What it did.
    pub action: AuditAction,
    /// The fund id or client id changed.
    pub target: String,
    /// The changed fields before the change (empty for a fund created).
    pub before: Map<String, Value>,
    /// The changed fields after the change.
    pub after: Map<String, Value>,
    /// The request that made the change, when the caller gives one.
    pub request_id: Option<String>,
}

/// Who makes an administrative change, recorded in its audit event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Who asked: 1 to [`MAX_ACTOR_CHARS`] characters, no control characters.
    pub name: String,
    /// The request that made the change (e.g. the REST `X-Request-ID`), when known.
    pub request_id: Option<String>,
}

impl Actor {
    /// An actor without a request id.
    pub fn new(name: impl Into<String>) -> Actor {
        Actor {
            name: name.into(),
            request_id: None,
        }
    }

    /// The same actor, with the request that made the change.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Actor {
        self.request_id = Some(request_id.into());
        self
    }

    /// Checks the name and the request id.
    pub(crate) fn validate(&self) -> Result<()> {
        if !plain_text(&self.name, MAX_ACTOR_CHARS) {
            return Err(Error::invalid("actor", Invalid::Actor));
        }
        if let Some(request_id) = &self.request_id
            && !plain_text(request_id, MAX_REQUEST_ID_CHARS)
        {
            return Err(Error::invalid("request_id", Invalid::RequestId));
        }
        Ok(())
    }
}

/// Not blank, at most `max_chars` characters, no control characters.
fn plain_text(text: &str, max_chars: usize) -> bool {
    !text.trim().is_empty()
        && text.chars().count() <= max_chars
        && !text.chars().any(char::is_control)
}

/// The fields of `after` that differ from `before` (by their JSON form), as the two sides of an
/// audit event; empty sides when nothing changed.
pub(crate) fn changed_fields(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut old = Map::new();
    let mut new = Map::new();
    for (field, value) in after {
        let previous = before.get(field).cloned().unwrap_or(Value::Null);
        if &previous != value {
            old.insert(field.clone(), previous);
            new.insert(field.clone(), value.clone());
        }
    }
    (old, new)
}
