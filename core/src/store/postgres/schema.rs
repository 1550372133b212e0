//! The schema: created and upgraded on connect by versioned migrations (the `.sql` files in
//! `migrations/`), one process at a time (a row lock on `fundcore_schema_lock`), and recorded
//! in `fundcore_migrations`. Nothing is ever dropped.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::connect::{Conn, PgError, Settings};
use super::rows::col;
use super::statements::Q;
use crate::error::{Error, Result};

/// The schema migrations this library knows, in order: (version, name, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (
        2,
        "administration",
        include_str!("migrations/0002_administration.sql"),
    ),
    (
        3,
        "failed_notifications",
        include_str!("migrations/0003_failed_notifications.sql"),
    ),
];

/// The newest schema version this library knows.
fn known_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
}

/// The schema version recorded in the database; `None` without fundcore's tables.
fn applied_version(conn: &mut Conn) -> std::result::Result<Option<i32>, PgError> {
    match conn.query_one(Q::AppliedVersion, &[]) {
        Ok(row) => Ok(row.try_get(0).map_err(PgError::Driver)?),
        Err(err) if err.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Fails unless the database holds fundcore's schema at the version this library knows.
pub(super) fn check(conn: &mut Conn, server: &str) -> Result<()> {
    let fail = |detail: String| Error::storage(format!("PostgreSQL at {server}: {detail}"));
    let applied = applied_version(conn).map_err(|err| fail(err.to_string()))?;
    let known = known_version();
    match applied {
        None => Err(fail("the database holds no fundcore store".to_owned())),
        Some(applied) if applied == known => Ok(()),
        Some(applied) if applied < known => Err(fail(format!(
            "the database has fundcore schema version {applied}, older than this library's \
             ({known}); connect an engine once to upgrade it"
        ))),
        Some(applied) => Err(fail(format!(
            "the database has fundcore schema version {applied}, newer than this library knows \
             ({known}); upgrade fundcore"
        ))),
    }
}

/// Creates or upgrades the schema, one process at a time. Every step is in a transaction
/// block that commits only when the schema is whole: a lost reply leaves either the old
/// schema or the new one, and the next connect finishes the job.
pub(super) fn migrate(conn: &mut Conn, settings: &Settings) -> Result<()> {
    let server = &settings.server;
    let fail = |err: PgError| Error::storage(format!("PostgreSQL at {server}: {err}"));
    // Two processes creating the same table at once can collide in the catalogue; the loser
    // finds it created on the next try.
    let mut tries = 0;
    loop {
        let created = conn.batch(
            "CREATE TABLE IF NOT EXISTS fundcore_schema_lock (id integer PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS fundcore_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO fundcore_schema_lock (id) VALUES (1) ON CONFLICT DO NOTHING;",
        );
        match created {
            Ok(()) => break,
            Err(err) if tries < 5 && err.refused_by_server() => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20 * tries));
            }
            Err(err) => return Err(fail(err)),
        }
    }
    // No idle limit here: a migration may be long, and it runs before any change.
    conn.batch("BEGIN").map_err(fail)?;
    conn.query(Q::LockSchema, &[]).map_err(fail)?;
    let applied: Option<i32> = col(&conn.query_one(Q::AppliedVersion, &[]).map_err(fail)?, 0)?;
    let applied = applied.unwrap_or(0);
    let known = known_version();
    if applied > known {
        conn.batch("ROLLBACK").map_err(fail)?;
        return Err(Error::storage(format!(
            "PostgreSQL at {server}: the database has fundcore schema version {applied}, newer \
             than this library knows ({known}); upgrade fundcore"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > applied) {
        conn.batch(sql).map_err(fail)?;
        conn.execute(Q::RecordMigration, &[version, name])
            .map_err(fail)?;
    }
    conn.batch("COMMIT").map_err(fail)
}
