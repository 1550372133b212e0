//! Every limit of the contract, once. Error texts, bindings, the REST host's OpenAPI document and
//! the docs take their numbers from here.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

/// The largest amount of one subscription, and of any configured money value.
pub const MAX_AMOUNT: Decimal = dec!(1_000_000_000_000);
/// Fractional digits of money (ISO 4217 minor unit of COP).
pub const MINOR_DIGITS: u32 = 2;
/// The longest client or fund name, in characters (after trimming).
pub const MAX_NAME_CHARS: usize = 100;
/// The longest email address, in characters.
pub const MAX_EMAIL_CHARS: usize = 254;
/// The longest local part of an email address (before the `@`), in bytes.
pub const MAX_EMAIL_LOCAL_BYTES: usize = 64;
/// Digits of an E.164 phone number, country code included: at least this many…
pub const MIN_PHONE_DIGITS: usize = 8;
/// …and at most this many.
pub const MAX_PHONE_DIGITS: usize = 15;
/// The largest page of history (and of every listing).
pub const MAX_PAGE: usize = 200;
/// The longest idempotency key, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;
/// The longest actor of an administrative change (who asked for it), in characters.
pub const MAX_ACTOR_CHARS: usize = 200;
/// The longest request id kept with an audit event, in characters.
pub const MAX_REQUEST_ID_CHARS: usize = 200;
/// The longest SMS body: one GSM-7 segment.
pub const SMS_MAX_CHARS: usize = 160;

// How the limits relate (checked when the crate compiles).
const _: () = assert!(MIN_PHONE_DIGITS <= MAX_PHONE_DIGITS && MAX_PHONE_DIGITS <= 15);
const _: () = assert!(MAX_PAGE >= 1);
const _: () = assert!(MAX_NAME_CHARS >= 1 && MAX_IDEMPOTENCY_KEY_CHARS >= 1);
// A name fits an SMS with the rest of the notification (texts.rs shortens it further if needed).
const _: () = assert!(MAX_NAME_CHARS < SMS_MAX_CHARS);
const _: () = assert!(MINOR_DIGITS == 2);
