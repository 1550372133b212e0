//! Every human-facing text of fundcore, in Spanish (the default) and English: error messages
//! and notification templates. Nothing else in the workspace writes a sentence for a person.

use crate::client::Channel;
use crate::error::{DiskFault, Error, Invalid};
use crate::ids::TransactionId;
use crate::ledger::{Transaction, TransactionKind};
use crate::limits::{
    MAX_ACTOR_CHARS, MAX_AMOUNT, MAX_IDEMPOTENCY_KEY_CHARS, MAX_NAME_CHARS, MAX_PAGE,
    MAX_REQUEST_ID_CHARS, MINOR_DIGITS, SMS_MAX_CHARS,
};
use crate::locale::Locale;
use crate::money::format_cop;

/// The reason of a `VALIDATION_ERROR`, in `locale`; limits come from [`crate::limits`].
pub(crate) fn invalid_text(problem: Invalid, locale: Locale) -> String {
    use crate::locale::Locale::{En, Es};
    use Invalid::*;
    match (locale, problem) {
        (Es, AmountNotANumber) => "el monto debe ser un número decimal".into(),
        (Es, AmountAmbiguous) => {
            "escriba el monto sin punto de miles (75000); el punto separa solo los centavos (75000.50)"
                .into()
        }
        (Es, AmountNotPositive) => "el monto debe ser mayor que cero".into(),
        (Es, AmountTooPrecise) => format!("el monto admite como máximo {MINOR_DIGITS} decimales"),
        (Es, AmountTooLarge) => format!("el monto no puede superar {}", format_cop(MAX_AMOUNT)),
        (Es, Name) => {
            format!("el nombre es obligatorio y tiene como máximo {MAX_NAME_CHARS} caracteres")
        }
        (Es, Email) => "el correo electrónico no es válido".into(),
        (Es, Phone) => "el teléfono debe estar en formato E.164, p. ej. +573001234567".into(),
        (Es, Channel) => "el canal debe ser 'email' o 'sms'".into(),
        (Es, Limit) => format!("el límite debe estar entre 1 y {MAX_PAGE}"),
        (Es, IdempotencyKey) => format!(
            "la clave de idempotencia debe tener entre 1 y {MAX_IDEMPOTENCY_KEY_CHARS} caracteres visibles"
        ),
        (Es, Cursor) => "el cursor debe ser un identificador de transacción".into(),
        (Es, Locale) => "el idioma debe ser 'es' o 'en'".into(),
        (Es, Config) => "valor de configuración fuera de rango".into(),
        (Es, Id) => "no es un identificador válido".into(),
        (Es, Category) => "la categoría debe ser 'FPV' o 'FIC'".into(),
        (Es, Actor) => format!(
            "el actor es obligatorio y tiene como máximo {MAX_ACTOR_CHARS} caracteres visibles"
        ),
        (Es, RequestId) => format!(
            "el identificador de solicitud tiene entre 1 y {MAX_REQUEST_ID_CHARS} caracteres visibles"
        ),
        (Es, NoChange) => "indique al menos un campo a cambiar".into(),
        (Es, Range) => "el inicio del período no puede ser posterior a su fin".into(),
        (Es, Kind) => "el tipo debe ser 'subscription' o 'cancellation'".into(),
        (En, AmountNotANumber) => "the amount must be a decimal number".into(),
        (En, AmountAmbiguous) => {
            "write the amount without a thousands dot (75000); a dot only separates the cents (75000.50)"
                .into()
        }
        (En, AmountNotPositive) => "the amount must be greater than zero".into(),
        (En, AmountTooPrecise) => {
            format!("the amount allows at most {MINOR_DIGITS} decimal places")
        }
        (En, AmountTooLarge) => format!("the amount cannot exceed {}", format_cop(MAX_AMOUNT)),
        (En, Name) => format!("the name is required and has at most {MAX_NAME_CHARS} characters"),
        (En, Email) => "the email address is not valid".into(),
        (En, Phone) => "the phone must be in E.164 format, e.g. +573001234567".into(),
        (En, Channel) => "the channel must be 'email' or 'sms'".into(),
        (En, Limit) => format!("the limit must be between 1 and {MAX_PAGE}"),
        (En, IdempotencyKey) => format!(
            "the idempotency key must have between 1 and {MAX_IDEMPOTENCY_KEY_CHARS} visible characters"
        ),
        (En, Cursor) => "the cursor must be a transaction id".into(),
        (En, Locale) => "the locale must be 'es' or 'en'".into(),
        (En, Config) => "configuration value out of range".into(),
        (En, Id) => "not a valid id".into(),
        (En, Category) => "the category must be 'FPV' or 'FIC'".into(),
        (En, Actor) => {
            format!("the actor is required and has at most {MAX_ACTOR_CHARS} visible characters")
        }
        (En, RequestId) => {
            format!("the request id has between 1 and {MAX_REQUEST_ID_CHARS} visible characters")
        }
        (En, NoChange) => "give at least one field to change".into(),
        (En, Range) => "the start of the period cannot be after its end".into(),
        (En, Kind) => "the kind must be 'subscription' or 'cancellation'".into(),
    }
}

impl Error {
    /// The human message in `locale`.
    pub fn message(&self, locale: Locale) -> String {
        error_message(self, locale)
    }

    /// For `VALIDATION_ERROR`, what is wrong with [`Error::field`], in `locale` (the message
    /// without the field's name); `None` for other errors.
    pub fn problem(&self, locale: Locale) -> Option<String> {
        match self {
            Error::Validation { problem, .. } => Some(invalid_text(*problem, locale)),
            Error::DestinationExists { path, .. } => Some(destination_exists(path, locale)),
            _ => None,
        }
    }
}

/// Why a backup's destination is refused (the problem of [`Error::DestinationExists`]).
fn destination_exists(path: &str, locale: Locale) -> String {
    match locale {
        Locale::Es => format!(
            "{path} ya existe; una copia de seguridad nunca sobrescribe nada: indique una ruta \
             que no exista"
        ),
        Locale::En => format!(
            "{path} already exists; a backup never overwrites anything: give a path that does \
             not exist"
        ),
    }
}

/// The human message of an error, in `locale`.
fn error_message(error: &Error, locale: Locale) -> String {
    let es = locale == Locale::Es;
    match error {
        Error::Validation { field, problem } => {
            format!("{field}: {}", invalid_text(*problem, locale))
        }
        Error::DestinationExists { field, path } => {
            format!("{field}: {}", destination_exists(path, locale))
        }
        Error::BelowMinimum { fund_name, minimum } if es => format!(
            "El monto mínimo para vincularse al fondo {fund_name} es {}",
            format_cop(*minimum)
        ),
        Error::BelowMinimum { fund_name, minimum } => format!(
            "The minimum amount to subscribe to fund {fund_name} is {}",
            format_cop(*minimum)
        ),
        Error::InsufficientBalance { fund_name } if es => {
            format!("No tiene saldo disponible para vincularse al fondo {fund_name}")
        }
        Error::InsufficientBalance { fund_name } => {
            format!("Insufficient available balance to subscribe to fund {fund_name}")
        }
        Error::AlreadySubscribed { fund_name } if es => {
            format!("Ya tiene una suscripción activa al fondo {fund_name}")
        }
        Error::AlreadySubscribed { fund_name } => {
            format!("You already have an active subscription to fund {fund_name}")
        }
        Error::NotSubscribed { fund_name } if es => {
            format!("No tiene una suscripción activa al fondo {fund_name}")
        }
        Error::NotSubscribed { fund_name } => {
            format!("You have no active subscription to fund {fund_name}")
        }
        Error::FundInactive { fund_name } if es => {
            format!("El fondo {fund_name} no recibe nuevas suscripciones")
        }
        Error::FundInactive { fund_name } => {
            format!("Fund {fund_name} does not accept new subscriptions")
        }
        Error::IdempotencyKeyReused { key } if es => {
            format!("La clave de idempotencia '{key}' ya se usó para otra solicitud")
        }
        Error::IdempotencyKeyReused { key } => {
            format!("The idempotency key '{key}' was already used for a different request")
        }
        Error::FundAlreadyExists { id } if es => format!("Ya existe el fondo {id}"),
        Error::FundAlreadyExists { id } => format!("Fund {id} already exists"),
        Error::ClientNotFound { id } if es => format!("No existe el cliente {id}"),
        Error::ClientNotFound { id } => format!("Client {id} not found"),
        Error::FundNotFound { id } if es => format!("No existe el fondo {id}"),
        Error::FundNotFound { id } => format!("Fund {id} not found"),
        Error::TransactionNotFound { id } if es => format!("No existe la transacción {id}"),
        Error::TransactionNotFound { id } => format!("Transaction {id} not found"),
        Error::Storage { detail } if es => {
            format!("Falla del almacenamiento; no se guardó ningún cambio ({detail})")
        }
        Error::Storage { detail } => {
            format!("The store failed; no change was saved ({detail})")
        }
        Error::OutcomeUnknown { detail } if es => format!(
            "No se pudo saber si el cambio se guardó: puede haberse guardado. Repita la \
             solicitud con la misma clave de idempotencia ({detail})"
        ),
        Error::OutcomeUnknown { detail } => format!(
            "Whether the change was saved could not be learned: it may have been saved. \
             Repeat the request with the same idempotency key ({detail})"
        ),
        Error::StoreInUse { path } if es => format!(
            "El almacén {path} ya está abierto en otro proceso (o en otro motor de este \
             proceso). Un almacén embebido lo usa un solo proceso a la vez; varios procesos \
             de trabajo necesitan el almacén PostgreSQL"
        ),
        Error::StoreInUse { path } => format!(
            "The store {path} is already open in another process (or in another engine of \
             this process). An embedded store is used by one process at a time; several \
             worker processes need the PostgreSQL store"
        ),
        Error::OpenedInAnotherProcess {
            opened_in,
            called_from,
        } if es => format!(
            "Este motor se abrió en otro proceso (pid {opened_in}) y no se puede usar en el \
             proceso {called_from}, creado con fork(): abra el motor después del fork, en \
             cada proceso hijo (con un almacén embebido, sin abrir ninguno en el proceso padre \
             antes del fork)"
        ),
        Error::OpenedInAnotherProcess {
            opened_in,
            called_from,
        } => format!(
            "This engine was opened in another process (pid {opened_in}) and cannot be used \
             in process {called_from}, created by fork(): open the engine after the fork, \
             in each child process (with an embedded store, without opening one in the parent \
             before the fork)"
        ),
        Error::EmbeddedStoreForked {
            opened_in,
            called_from,
        } if es => format!(
            "No se puede abrir un almacén embebido en este proceso ({called_from}): se creó con \
             fork() desde el proceso {opened_in} después de que este abriera uno, y los hilos \
             del almacén embebido no sobreviven a fork(). Abra el motor solo en los procesos \
             hijos, después del fork, y ninguno en el proceso padre antes de crearlos (o use el \
             almacén PostgreSQL)"
        ),
        Error::EmbeddedStoreForked {
            opened_in,
            called_from,
        } => format!(
            "An embedded store cannot be opened in this process ({called_from}): it was created \
             by fork() from process {opened_in} after that process had opened one, and the \
             embedded store's threads do not survive fork(). Open the engine only in the child \
             processes, after the fork, and none in the parent before forking (or use the \
             PostgreSQL store)"
        ),
        Error::DiskFault {
            fault: DiskFault::Full,
            in_doubt: true,
            detail,
        } if es => format!(
            "Disco lleno: libere espacio y vuelva a abrir el almacén. Hasta entonces no acepta cambios, y este puede haberse guardado o no: repítalo con la misma clave de idempotencia una vez reabierto; los confirmados antes están guardados ({detail})"
        ),
        Error::DiskFault {
            fault: DiskFault::Full,
            in_doubt: true,
            detail,
        } => format!(
            "Disk full: free space, then reopen the store. Until then it takes no changes, and this change may or may not be saved: repeat it with the same idempotency key once the store is reopened; those acknowledged before are saved ({detail})"
        ),
        Error::DiskFault {
            fault: DiskFault::Full,
            in_doubt: false,
            detail,
        } if es => format!(
            "Disco lleno: libere espacio y vuelva a abrir el almacén. Hasta entonces no acepta cambios, y este no se guardó; los confirmados antes están guardados ({detail})"
        ),
        Error::DiskFault {
            fault: DiskFault::Full,
            in_doubt: false,
            detail,
        } => format!(
            "Disk full: free space, then reopen the store. Until then it takes no changes, and this change was not saved; those acknowledged before are saved ({detail})"
        ),
        Error::DiskFault {
            fault: DiskFault::Io,
            in_doubt: true,
            detail,
        } if es => format!(
            "Error de E/S: revise el disco y vuelva a abrir el almacén. Hasta entonces no acepta cambios, y este puede haberse guardado o no: repítalo con la misma clave de idempotencia una vez reabierto; los confirmados antes están guardados ({detail})"
        ),
        Error::DiskFault {
            fault: DiskFault::Io,
            in_doubt: true,
            detail,
        } => format!(
            "I/O error: check the disk, then reopen the store. Until then it takes no changes, and this change may or may not be saved: repeat it with the same idempotency key once the store is reopened; those acknowledged before are saved ({detail})"
        ),
        Error::DiskFault {
            fault: DiskFault::Io,
            in_doubt: false,
            detail,
        } if es => format!(
            "Error de E/S: revise el disco y vuelva a abrir el almacén. Hasta entonces no acepta cambios, y este no se guardó; los confirmados antes están guardados ({detail})"
        ),
        Error::DiskFault {
            fault: DiskFault::Io,
            in_doubt: false,
            detail,
        } => format!(
            "I/O error: check the disk, then reopen the store. Until then it takes no changes, and this change was not saved; those acknowledged before are saved ({detail})"
        ),
        Error::StoreDamaged { path, detail } if es => format!(
            "El almacén {path} está dañado y no se puede abrir: restáurelo desde una copia de \
             seguridad ({detail})"
        ),
        Error::StoreDamaged { path, detail } => format!(
            "The store {path} is damaged and cannot be opened: restore it from a backup \
             ({detail})"
        ),
    }
}

/// Subject and body for a committed transaction, in `locale`, for the client's channel.
pub(crate) fn render_notification(
    name: &str,
    channel: Channel,
    tx: &Transaction,
    locale: Locale,
) -> (String, String) {
    let fund = tx.fund_name.as_str();
    let amount = format_cop(tx.amount);
    let balance = format_cop(tx.balance_after);
    let id = tx.id;
    let subject = match (locale, tx.kind) {
        (Locale::Es, TransactionKind::Subscription) => format!("Suscripción confirmada: {fund}"),
        (Locale::Es, TransactionKind::Cancellation) => format!("Cancelación confirmada: {fund}"),
        (Locale::En, TransactionKind::Subscription) => format!("Subscription confirmed: {fund}"),
        (Locale::En, TransactionKind::Cancellation) => format!("Cancellation confirmed: {fund}"),
    };
    let body = match channel {
        Channel::Email => match (locale, tx.kind) {
            (Locale::Es, TransactionKind::Subscription) => format!(
                "Hola {name}:\n\nSu suscripción al fondo {fund} por {amount} quedó registrada.\n\
                     Saldo disponible: {balance}.\nTransacción: {id}\n"
            ),
            (Locale::Es, TransactionKind::Cancellation) => format!(
                "Hola {name}:\n\nSu suscripción al fondo {fund} fue cancelada y le reintegramos {amount}.\n\
                     Saldo disponible: {balance}.\nTransacción: {id}\n"
            ),
            (Locale::En, TransactionKind::Subscription) => format!(
                "Hello {name},\n\nYour subscription to fund {fund} for {amount} is confirmed.\n\
                     Available balance: {balance}.\nTransaction: {id}\n"
            ),
            (Locale::En, TransactionKind::Cancellation) => format!(
                "Hello {name},\n\nYour subscription to fund {fund} was cancelled and {amount} refunded.\n\
                     Available balance: {balance}.\nTransaction: {id}\n"
            ),
        },
        Channel::Sms => sms_body(fund, &amount, &balance, id, tx.kind, locale),
    };
    (subject, body)
}

/// One SMS segment of plain GSM-7 text (no accents); a long fund name is shortened to fit.
fn sms_body(
    fund: &str,
    amount: &str,
    balance: &str,
    id: TransactionId,
    kind: TransactionKind,
    locale: Locale,
) -> String {
    let compose = |fund: &str| match (locale, kind) {
        (Locale::Es, TransactionKind::Subscription) => {
            format!("Suscripcion a {fund} por {amount}. Saldo {balance}. Tx {id}")
        }
        (Locale::Es, TransactionKind::Cancellation) => {
            format!("Cancelacion de {fund}, reintegro {amount}. Saldo {balance}. Tx {id}")
        }
        (Locale::En, TransactionKind::Subscription) => {
            format!("Subscribed to {fund} for {amount}. Balance {balance}. Tx {id}")
        }
        (Locale::En, TransactionKind::Cancellation) => {
            format!("Cancelled {fund}, refund {amount}. Balance {balance}. Tx {id}")
        }
    };
    let full = compose(fund);
    let overflow = full.chars().count().saturating_sub(SMS_MAX_CHARS);
    if overflow == 0 {
        return full;
    }
    let keep = fund.chars().count().saturating_sub(overflow + 2);
    let short: String = fund.chars().take(keep).chain("..".chars()).collect();
    let body = compose(&short);
    // Amounts and balances are at most MAX_AMOUNT, so the text around the fund's name always
    // fits; only a bug in the templates above breaks this.
    assert!(
        body.chars().count() <= SMS_MAX_CHARS,
        "SMS of {} characters",
        body.chars().count()
    );
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::ids::ClientId;
    use crate::time::Timestamp;
    use rust_decimal::Decimal;
    use uuid::Uuid;

    fn sample(
        channel: Channel,
        fund_name: &str,
        amount: &str,
        kind: TransactionKind,
    ) -> (Client, Transaction) {
        let client_id = ClientId(Uuid::now_v7());
        let client = Client {
            id: client_id,
            name: "Ana".into(),
            email: "ana@example.com".into(),
            phone: "+573001234567".into(),
            channel,
            balance: Decimal::ZERO,
            created_at: Timestamp::from_unix_micros(0),
        };
        let tx = Transaction {
            id: TransactionId(Uuid::now_v7()),
            client_id,
            fund_id: 1,
            fund_name: fund_name.into(),
            kind,
            amount: amount.parse().unwrap(),
            balance_after: amount.parse().unwrap(),
            created_at: Timestamp::from_unix_micros(0),
            idempotency_key: None,
        };
        (client, tx)
    }

    #[test]
    fn messages_name_fund_amount_transaction_and_balance() {
        for locale in [Locale::Es, Locale::En] {
            for kind in [TransactionKind::Subscription, TransactionKind::Cancellation] {
                for channel in [Channel::Email, Channel::Sms] {
                    let (client, tx) = sample(channel, "FPV_BTG_PACTUAL_ECOPETROL", "125000", kind);
                    let (subject, body) =
                        render_notification(&client.name, client.channel, &tx, locale);
                    assert!(subject.contains("FPV_BTG_PACTUAL_ECOPETROL"));
                    for needle in [
                        "FPV_BTG_PACTUAL_ECOPETROL",
                        "COP $125.000",
                        &tx.id.to_string(),
                    ] {
                        assert!(body.contains(needle), "{locale} {kind} {channel}: {body}");
                    }
                }
            }
        }
        let (client, tx) = sample(
            Channel::Email,
            "DEUDAPRIVADA",
            "50000",
            TransactionKind::Subscription,
        );
        assert!(
            render_notification(&client.name, client.channel, &tx, Locale::Es)
                .0
                .starts_with("Suscripción")
        );
        assert!(
            render_notification(&client.name, client.channel, &tx, Locale::En)
                .0
                .starts_with("Subscription")
        );
    }

    #[test]
    fn sms_fits_one_plain_segment_even_at_the_limits() {
        for fund in ["FPV_BTG_PACTUAL_RECAUDADORA", &"F".repeat(120)] {
            for locale in [Locale::Es, Locale::En] {
                for kind in [TransactionKind::Subscription, TransactionKind::Cancellation] {
                    let (client, tx) = sample(Channel::Sms, fund, "999999999999.99", kind);
                    let (_, body) = render_notification(&client.name, client.channel, &tx, locale);
                    assert!(
                        body.chars().count() <= SMS_MAX_CHARS,
                        "{} chars: {body}",
                        body.len()
                    );
                    assert!(body.is_ascii(), "{body}");
                    assert!(body.contains(&tx.id.to_string()));
                }
            }
        }
    }
}
