//! The parts of the public API that bindings build on: error codes and kinds, id parsing, the
//! configuration builder, enum names and limits in texts. No store is needed.

use std::str::FromStr;
use std::time::Duration;

use fundcore::limits::{MAX_IDEMPOTENCY_KEY_CHARS, MAX_NAME_CHARS, MAX_PAGE};
use fundcore::{
    Category, ClientId, Config, Durability, Error, ErrorCode, ErrorKind, IdKind, Invalid, Locale,
    NotificationId, ParseIdError, StoreLocation, TransactionId, fund_id_from_integer,
    parse_fund_id,
};

#[test]
fn every_code_has_one_kind_and_the_http_status_of_the_error_table() {
    let expected = [
        ("VALIDATION_ERROR", ErrorKind::Invalid, 422),
        ("BELOW_MINIMUM", ErrorKind::Invalid, 422),
        ("INSUFFICIENT_BALANCE", ErrorKind::Conflict, 409),
        ("ALREADY_SUBSCRIBED", ErrorKind::Conflict, 409),
        ("NOT_SUBSCRIBED", ErrorKind::Conflict, 409),
        ("FUND_INACTIVE", ErrorKind::Conflict, 409),
        ("IDEMPOTENCY_KEY_REUSED", ErrorKind::Conflict, 409),
        ("FUND_ALREADY_EXISTS", ErrorKind::Conflict, 409),
        ("CLIENT_NOT_FOUND", ErrorKind::NotFound, 404),
        ("FUND_NOT_FOUND", ErrorKind::NotFound, 404),
        ("TRANSACTION_NOT_FOUND", ErrorKind::NotFound, 404),
        ("STORAGE_ERROR", ErrorKind::Unavailable, 503),
        ("OUTCOME_UNKNOWN", ErrorKind::Unavailable, 503),
    ];
    let actual: Vec<_> = ErrorCode::ALL
        .iter()
        .map(|code| (code.as_str(), code.kind(), code.http_status()))
        .collect();
    assert_eq!(actual, expected);
}

#[test]
fn malformed_ids_are_parse_errors_that_a_lookup_turns_into_not_found() {
    let err = ClientId::from_str("x").unwrap_err();
    assert_eq!(
        err,
        ParseIdError {
            kind: IdKind::Client,
            text: "x".into()
        }
    );
    assert_eq!(
        err.clone().into_lookup_error(),
        Error::ClientNotFound { id: "x".into() }
    );
    assert_eq!(
        Error::from(err),
        Error::Validation {
            field: "client_id",
            problem: Invalid::Id
        }
    );
    let tx = TransactionId::from_str("nope").unwrap_err();
    assert_eq!(
        tx.into_lookup_error().code(),
        ErrorCode::TransactionNotFound
    );
    let notification = NotificationId::from_str("nope").unwrap_err();
    assert_eq!(notification.kind, IdKind::Notification);
    assert_eq!(
        notification.into_lookup_error().field(),
        Some("notification_id"),
        "a notification id is never looked up: a malformed one is invalid input"
    );
    let cursor = TransactionId::parse_cursor("nope").unwrap_err();
    assert_eq!(cursor.field(), Some("before"));
}

#[test]
fn a_fund_id_outside_the_id_range_names_no_fund() {
    assert_eq!(fund_id_from_integer(3), Ok(3));
    assert_eq!(fund_id_from_integer(u32::MAX.into()), Ok(u32::MAX));
    for (value, shown) in [(-1_i128, "-1"), (1 << 32, "4294967296")] {
        let err = fund_id_from_integer(value).unwrap_err();
        assert_eq!(err, Error::FundNotFound { id: shown.into() });
        assert_eq!(
            err.message(Locale::Es),
            format!("No existe el fondo {shown}")
        );
    }
    assert_eq!(parse_fund_id(" 3 "), Ok(3));
    assert_eq!(parse_fund_id("+3"), Ok(3));
    assert_eq!(
        parse_fund_id("-7").unwrap_err().code(),
        ErrorCode::FundNotFound
    );
    let huge = "9".repeat(60);
    assert_eq!(
        parse_fund_id(&huge),
        Err(Error::FundNotFound { id: huge.clone() })
    );
    for text in ["", "abc", "3.0", "1e3", "--1", "+"] {
        assert_eq!(
            parse_fund_id(text),
            Err(Error::Validation {
                field: "fund_id",
                problem: Invalid::Id
            }),
            "{text:?}"
        );
    }
}

#[test]
fn the_builder_keeps_defaults_for_settings_not_given_and_refuses_the_other_stores_settings() {
    let config = Config::builder()
        .max_attempts(None)
        .max_attempts(3)
        .locale(Some(Locale::En))
        .build()
        .unwrap();
    assert_eq!(config.max_attempts, 3);
    assert_eq!(config.locale, Locale::En);
    assert_eq!(config.pool_size, Config::DEFAULT_POOL_SIZE);
    assert_eq!(config.initial_balance, Config::DEFAULT_INITIAL_BALANCE);

    let embedded = StoreLocation::parse("data/fundcore");
    let postgres = StoreLocation::parse("postgresql://db.example/fundcore");
    let field = |result: fundcore::Result<Config>| result.unwrap_err().field();
    assert_eq!(
        field(Config::builder().pool_size(4).build_for(&embedded)),
        Some("pool_size")
    );
    assert_eq!(
        field(
            Config::builder()
                .cache_capacity_bytes(1 << 20)
                .build_for(&postgres)
        ),
        Some("cache_capacity_bytes")
    );
    let periodic = Durability::from_name("periodic", None).unwrap();
    assert_eq!(
        periodic,
        Durability::Periodic {
            interval_ms: Config::DEFAULT_FLUSH_INTERVAL_MS
        }
    );
    assert_eq!(
        field(Config::builder().durability(periodic).build_for(&postgres)),
        Some("durability")
    );
    assert!(
        Config::builder()
            .durability(Durability::EveryCommit)
            .pool_size(4)
            .build_for(&postgres)
            .is_ok()
    );
    assert_eq!(
        Durability::from_name("every_commit", Some(10))
            .unwrap_err()
            .field(),
        Some("flush_interval_ms")
    );
    assert_eq!(
        Durability::from_name("sometimes", None)
            .unwrap_err()
            .field(),
        Some("durability")
    );
    assert_eq!(
        field(Config::builder().max_attempts(0).build()),
        Some("max_attempts")
    );
    assert_eq!(
        field(Config::builder().pool_size(0).build()),
        Some("pool_size")
    );
    // The network settings belong to PostgreSQL and have bounds.
    assert_eq!(config.operation_timeout, Config::DEFAULT_OPERATION_TIMEOUT);
    assert!(config.prepared_statements);
    for embedded_only_not in ["operation_timeout", "prepared_statements"] {
        let builder = match embedded_only_not {
            "operation_timeout" => Config::builder().operation_timeout(Duration::from_secs(2)),
            _ => Config::builder().prepared_statements(false),
        };
        assert_eq!(
            field(builder.clone().build_for(&embedded)),
            Some(embedded_only_not)
        );
        assert!(builder.build_for(&postgres).is_ok());
    }
    for outside in [Duration::from_millis(99), Duration::from_millis(30_001)] {
        assert_eq!(
            field(Config::builder().operation_timeout(outside).build()),
            Some("operation_timeout")
        );
    }
    for inside in [Config::MIN_OPERATION_TIMEOUT, Config::MAX_OPERATION_TIMEOUT] {
        assert!(Config::builder().operation_timeout(inside).build().is_ok());
    }
}

#[test]
fn enums_read_their_own_names() {
    assert_eq!("fic".parse::<Category>(), Ok(Category::Fic));
    assert_eq!(" FPV ".parse::<Category>(), Ok(Category::Fpv));
    assert_eq!(Category::Fic.to_string(), "FIC");
    assert_eq!(
        "bond".parse::<Category>().unwrap_err().field(),
        Some("category")
    );
    assert_eq!(
        "SMS".parse::<fundcore::Channel>(),
        Ok(fundcore::Channel::Sms)
    );
    assert_eq!(
        "cancellation".parse::<fundcore::TransactionKind>(),
        Ok(fundcore::TransactionKind::Cancellation)
    );
}

#[test]
fn validation_texts_state_the_limits_of_the_code() {
    let problem = |invalid| {
        Error::Validation {
            field: "x",
            problem: invalid,
        }
        .problem(Locale::En)
        .unwrap()
    };
    assert!(problem(Invalid::Limit).ends_with(&format!("between 1 and {MAX_PAGE}")));
    assert!(problem(Invalid::Name).contains(&format!("at most {MAX_NAME_CHARS} characters")));
    assert!(
        problem(Invalid::IdempotencyKey).contains(&format!("1 and {MAX_IDEMPOTENCY_KEY_CHARS}"))
    );
    let err = Error::Validation {
        field: "limit",
        problem: Invalid::Limit,
    };
    assert_eq!(
        err.message(Locale::En),
        format!("limit: {}", err.problem(Locale::En).unwrap())
    );
    assert_eq!(
        Error::ClientNotFound { id: "x".into() }.problem(Locale::En),
        None
    );
}
