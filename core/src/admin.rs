//! Administration (docs/operations.md): the fund catalogue, clients' contact data, the client
//! listing and the audit trail. Every change commits with its audit event in one store
//! transaction.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::audit::{Actor, AuditAction, AuditEvent, changed_fields};
use crate::client::{Channel, Client, validate_email, validate_name, validate_phone};
use crate::engine::{Engine, client_not_found, fund_not_found};
use crate::error::{Error, Invalid, Result};
use crate::fund::{Category, Fund};
use crate::ids::{AuditEventId, ClientId, FundId};
use crate::money::validate_amount;
use crate::page::{Page, check_limit};

/// What `update_fund` changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FundChanges {
    /// A new display name (used by later transactions; recorded ones keep theirs).
    pub name: Option<String>,
    /// A new minimum, for subscriptions made afterwards.
    pub minimum: Option<Decimal>,
    /// Whether the fund accepts new subscriptions (cancellations are always allowed).
    pub active: Option<bool>,
}

/// What `update_client` changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new email address.
    pub email: Option<String>,
    /// A new phone number (E.164).
    pub phone: Option<String>,
    /// Where later notifications go.
    pub channel: Option<Channel>,
}

impl Engine {
    /// Adds a fund to the catalogue (active). `FUND_ALREADY_EXISTS` when the id is taken; the
    /// name and minimum follow the rules of client names and of amounts.
    pub fn create_fund(
        &self,
        id: FundId,
        name: &str,
        minimum: Decimal,
        category: Category,
        actor: &Actor,
    ) -> Result<Fund> {
        crate::observe::operation("create_fund", None, Some(id), || {
            self.check_process()?;
            actor.validate()?;
            let fund = Fund::new(
                id,
                validate_name(name)?,
                validate_amount(minimum).map_err(|err| err.on_field("minimum"))?,
                category,
            );
            let after = fund_fields(&fund);
            let event = self.audit_event(
                actor,
                AuditAction::FundCreated,
                id.to_string(),
                (Map::new(), after),
                None,
            );
            if !self.inner.store.create_fund(&fund, &event)? {
                return Err(Error::FundAlreadyExists { id });
            }
            self.commit_durably()?;
            Ok(fund)
        })
    }

    /// Changes a fund's name, minimum or active flag. A new minimum applies to later
    /// subscriptions; existing ones are refunded exactly their stored amount. An inactive fund
    /// refuses new subscriptions (`FUND_INACTIVE`) and still allows cancellations. A change
    /// that changes nothing writes no audit event.
    pub fn update_fund(&self, id: FundId, changes: &FundChanges, actor: &Actor) -> Result<Fund> {
        crate::observe::operation("update_fund", None, Some(id), || {
            self.check_process()?;
            actor.validate()?;
            if changes == &FundChanges::default() {
                return Err(Error::invalid("changes", Invalid::NoChange));
            }
            let name = changes.name.as_deref().map(validate_name).transpose()?;
            let minimum = changes
                .minimum
                .map(|minimum| validate_amount(minimum).map_err(|err| err.on_field("minimum")))
                .transpose()?;
            let mut decide = |current: Fund, newest_event| -> Result<Option<(Fund, AuditEvent)>> {
                let mut updated = current.clone();
                if let Some(name) = &name {
                    updated.name = name.clone();
                }
                if let Some(minimum) = minimum {
                    updated.minimum = minimum;
                }
                if let Some(active) = changes.active {
                    updated.active = active;
                }
                let (before, after) =
                    changed_fields(&fund_fields(&current), &fund_fields(&updated));
                if after.is_empty() {
                    return Ok(None);
                }
                let event = self.audit_event(
                    actor,
                    AuditAction::FundUpdated,
                    id.to_string(),
                    (before, after),
                    newest_event,
                );
                Ok(Some((updated, event)))
            };
            let fund = self
                .inner
                .store
                .update_fund(id, &mut decide)?
                .ok_or_else(|| fund_not_found(id))?;
            self.commit_durably()?;
            Ok(fund)
        })
    }

    /// Changes a client's name, email, phone or channel, validated as in `register_client`.
    /// Notifications created afterwards use the new channel and recipient; entries already in
    /// the outbox keep theirs. A change that changes nothing writes no audit event.
    pub fn update_client(
        &self,
        id: ClientId,
        changes: &ContactChanges,
        actor: &Actor,
    ) -> Result<Client> {
        crate::observe::operation("update_client", Some(&id), None, || {
            self.check_process()?;
            actor.validate()?;
            if changes == &ContactChanges::default() {
                return Err(Error::invalid("changes", Invalid::NoChange));
            }
            let name = changes.name.as_deref().map(validate_name).transpose()?;
            let email = changes.email.as_deref().map(validate_email).transpose()?;
            let phone = changes.phone.as_deref().map(validate_phone).transpose()?;
            let mut decide =
                |current: Client, newest_event| -> Result<Option<(Client, AuditEvent)>> {
                    let mut updated = current.clone();
                    if let Some(name) = &name {
                        updated.name = name.clone();
                    }
                    if let Some(email) = &email {
                        updated.email = email.clone();
                    }
                    if let Some(phone) = &phone {
                        updated.phone = phone.clone();
                    }
                    if let Some(channel) = changes.channel {
                        updated.channel = channel;
                    }
                    let (before, after) =
                        changed_fields(&contact_fields(&current), &contact_fields(&updated));
                    if after.is_empty() {
                        return Ok(None);
                    }
                    let event = self.audit_event(
                        actor,
                        AuditAction::ClientUpdated,
                        id.to_string(),
                        (before, after),
                        newest_event,
                    );
                    Ok(Some((updated, event)))
                };
            let client = self
                .inner
                .store
                .update_client(id, &mut decide)?
                .ok_or_else(|| client_not_found(id))?;
            self.commit_durably()?;
            Ok(client)
        })
    }

    /// A page of clients, newest first (1..=[`MAX_PAGE`](crate::MAX_PAGE) per page), older than `before`.
    pub fn clients(
        &self,
        limit: usize,
        before: Option<ClientId>,
    ) -> Result<Page<Client, ClientId>> {
        crate::observe::operation("clients", None, None, || {
            self.check_process()?;
            check_limit(limit)?;
            let rows = self.inner.store.clients(limit + 1, before)?;
            Ok(Page::from_rows(rows, limit, |client| client.id))
        })
    }

    /// A page of the audit trail, newest first (1..=[`MAX_PAGE`](crate::MAX_PAGE) per page), older than
    /// `before`.
    pub fn audit_events(
        &self,
        limit: usize,
        before: Option<AuditEventId>,
    ) -> Result<Page<AuditEvent, AuditEventId>> {
        crate::observe::operation("audit_events", None, None, || {
            self.check_process()?;
            check_limit(limit)?;
            let rows = self.inner.store.audit_events(limit + 1, before)?;
            Ok(Page::from_rows(rows, limit, |event| event.id))
        })
    }

    /// The event of a change, its id above `newest` (the newest event another process
    /// stored, when known) so the trail lists changes in the order they happened.
    fn audit_event(
        &self,
        actor: &Actor,
        action: AuditAction,
        target: String,
        (before, after): (Map<String, Value>, Map<String, Value>),
        newest: Option<AuditEventId>,
    ) -> AuditEvent {
        let at = self.now();
        let floor = newest.map_or(uuid::Uuid::nil(), |id| id.0);
        AuditEvent {
            id: AuditEventId(self.inner.ids.next_above(at, floor)),
            at,
            actor: actor.name.clone(),
            action,
            target,
            before,
            after,
            request_id: actor.request_id.clone(),
        }
    }
}

/// The fields of a fund an audit event records (money as text, as on the wire).
fn fund_fields(fund: &Fund) -> Map<String, Value> {
    object(json!({
        "name": fund.name,
        "minimum": fund.minimum.to_string(),
        "category": fund.category.as_str(),
        "active": fund.active,
    }))
}

/// The contact fields of a client an audit event records.
fn contact_fields(client: &Client) -> Map<String, Value> {
    object(json!({
        "name": client.name,
        "email": client.email,
        "phone": client.phone,
        "channel": client.channel.as_str(),
    }))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
