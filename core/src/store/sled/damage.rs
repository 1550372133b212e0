//! Damage on disk: an embedded store whose files were changed or cut short behind its back.
//!
//! sled checks each message of its log with a CRC and, on opening, takes the first message that
//! fails it (or that a cut file lacks) for the end of the log: a byte flipped in the middle of
//! the log, or the file cut short, used to open as an older store, consistent and silently
//! missing every change after the damage. So the store counts its changes (in memory, from the
//! `meta` key `changes` it read on opening) and, when it is closed cleanly, writes the count it
//! reached into `meta` as its last write, then into a seal file beside sled's (`fundcore.seal`,
//! replaced atomically). Damage that ends the log early drops that last write (a log is read in
//! order), so the log then holds an older count.
//! Opening compares: a log that holds fewer changes than the seal says it had is damaged, and
//! the store refuses to open with STORAGE_ERROR naming its path. The seal is a lower bound (a
//! crash leaves it at the last clean close, and the log only grows), so a store that crashed
//! opens as before. sled's own errors on opening (corrupt settings, an unreadable snapshot) and
//! its panics on input it cannot read are the same refusal.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::SledStore;
use crate::error::{Error, Result};

/// The seal file, beside sled's files in the store directory.
const SEAL_FILE: &str = "fundcore.seal";
/// Its first line.
const SEAL_HEADER: &str = "fundcore seal 1";
/// The `meta` key of the change count.
const CHANGES_KEY: &[u8] = b"changes";

fn read_count(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes)
}

fn changes(meta: &sled::Tree) -> Result<u64> {
    Ok(meta.get(CHANGES_KEY)?.map_or(0, |bytes| read_count(&bytes)))
}

/// Whether the store may be sealed when closed: only once its seal was checked on opening (a
/// store refused as damaged must not seal the count it was cut to).
/// It also counts the changes committed since the store was created (written to `meta` and the
/// seal on a clean close only: nothing on a commit's path but this increment).
#[derive(Debug, Default)]
pub(crate) struct Seal {
    checked: AtomicBool,
    changes: AtomicU64,
}

impl Seal {
    /// One more change committed.
    pub(crate) fn count_change(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }
}

/// Refuses a store whose log holds fewer changes than its seal says it had.
pub(crate) fn check_seal(path: Option<&Path>, meta: &sled::Tree, seal: &Seal) -> Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let file = path.join(SEAL_FILE);
    let text = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            // Never sealed: a new store, or one of a release before seals.
            seal.changes.store(changes(meta)?, Ordering::SeqCst);
            seal.checked.store(true, Ordering::SeqCst);
            return Ok(());
        }
        Err(err) => return Err(super::io_errors::from_io(&err, &file.display().to_string())),
    };
    let sealed = parse_seal(&text).ok_or_else(|| damaged(path, "its seal file is unreadable"))?;
    let held = changes(meta)?;
    if held < sealed {
        return Err(damaged(
            path,
            &format!(
                "its log holds {held} changes, {sealed} when it was last closed: it was cut \
                 short or a byte of it changed"
            ),
        ));
    }
    seal.changes.store(held, Ordering::SeqCst);
    seal.checked.store(true, Ordering::SeqCst);
    Ok(())
}

/// The count of a seal file: its header, then `changes <n>`, then `check <n xor a constant>`
/// (so a flipped digit is seen).
fn parse_seal(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    if lines.next()? != SEAL_HEADER {
        return None;
    }
    let count: u64 = lines.next()?.strip_prefix("changes ")?.parse().ok()?;
    let check: u64 = lines.next()?.strip_prefix("check ")?.parse().ok()?;
    (check == count ^ SEAL_CHECK && lines.next().is_none()).then_some(count)
}

const SEAL_CHECK: u64 = 0x5EA1_5EA1_5EA1_5EA1;

fn seal_text(count: u64) -> String {
    format!(
        "{SEAL_HEADER}\nchanges {count}\ncheck {}\n",
        count ^ SEAL_CHECK
    )
}

/// The refusal of a damaged store.
pub(crate) fn damaged(path: &Path, detail: &str) -> Error {
    Error::StoreDamaged {
        path: path.display().to_string(),
        detail: detail.to_owned(),
    }
}

/// An error of opening the store in `path`: sled's corruption and unreadable-format errors, and
/// its panics, mean the store is damaged; a damage error learned without the path gets it.
pub(crate) fn on_open(err: Error, path: Option<&Path>) -> Error {
    match (err, path) {
        (Error::StoreDamaged { detail, .. }, Some(path)) => damaged(path, &detail),
        (err, _) => err,
    }
}

/// sled's errors that mean its files do not read as a store: corrupt data, or settings and
/// snapshots it cannot parse (a damaged `conf` reads as a store of an unsupported version).
pub(crate) fn sled_open_error(err: sled::Error, path: Option<&Path>) -> Error {
    match (&err, path) {
        (sled::Error::Corruption { .. }, Some(path)) => damaged(path, &err.to_string()),
        (sled::Error::Unsupported(_) | sled::Error::ReportableBug(_), Some(path)) => {
            damaged(path, &err.to_string())
        }
        _ => Error::from(err),
    }
}

/// Runs `open` (sled's opening and reading of a store's files), turning a panic into the
/// refusal of a damaged store: sled 0.34 asserts on some input it cannot read, and a library
/// does not panic on what a disk returned. (Rust's panic hook still prints the message.)
pub(crate) fn catching_panics<T>(
    path: Option<&Path>,
    open: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(open)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            match path {
                Some(path) => Err(damaged(
                    path,
                    &format!("the store could not be read: {what}"),
                )),
                None => Err(Error::storage(format!(
                    "the store could not be read: {what}"
                ))),
            }
        }
    }
}

impl SledStore {
    /// On closing: writes the change count reached into `meta` (the log's last write), flushes,
    /// syncs and, when the disk never failed, writes the seal with that count. Errors have no
    /// one to report to: the seal is left as it was, which is still a lower bound.
    pub(super) fn close_sealed(&self) {
        let sealable = self.health.dir().is_some() && self.seal.checked.load(Ordering::SeqCst);
        let count = self.seal.changes.load(Ordering::SeqCst);
        let counted = if sealable {
            self.meta
                .insert(CHANGES_KEY, &count.to_be_bytes())
                .map(drop)
                .map_err(Error::from)
        } else {
            Ok(())
        };
        let flushed = counted.and_then(|()| self.db.flush().map(drop).map_err(Error::from));
        let Some(path) = self.health.dir().filter(|_| sealable) else {
            return;
        };
        let sealed = flushed
            .and_then(|()| self.health.check())
            .and_then(|()| self.health.sync())
            .and_then(|()| write_seal(path, count));
        if let Err(err) = sealed {
            tracing::warn!(error = %err, "closing the embedded store: its seal was not written");
        }
    }
}

/// Replaces the seal file atomically (a temporary file, synced, renamed over it, the directory
/// synced).
fn write_seal(path: &Path, count: u64) -> Result<()> {
    let file = path.join(SEAL_FILE);
    let partial: PathBuf = path.join(format!("{SEAL_FILE}.partial"));
    let io = |err: std::io::Error| super::io_errors::from_io(&err, &file.display().to_string());
    let mut out = std::fs::File::create(&partial).map_err(io)?;
    out.write_all(seal_text(count).as_bytes()).map_err(io)?;
    out.sync_all().map_err(io)?;
    drop(out);
    std::fs::rename(&partial, &file).map_err(io)?;
    std::fs::File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_reads_back_and_a_changed_one_does_not() {
        let text = seal_text(4711);
        assert_eq!(parse_seal(text.as_bytes()), Some(4711));
        assert_eq!(parse_seal(text.replace("4711", "4712").as_bytes()), None);
        assert_eq!(parse_seal(&text.as_bytes()[..text.len() - 3]), None);
        assert_eq!(parse_seal(b""), None);
    }
}
