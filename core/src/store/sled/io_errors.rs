//! How the embedded store meets a failing disk: a full disk or an I/O error on a write or a
//! sync.
//!
//! sled reports an error of its log writes (`pwrite`, `sync_file_range`) to the call that waits
//! for them and then refuses every later write until it is reopened, but its background
//! flusher only logs a failed `fsync` and goes on. A failed sync cannot be retried: the kernel
//! may have dropped the dirty pages it could not write, and a later sync that succeeds says
//! nothing about them. So the store syncs the log file itself after each flush, through a
//! descriptor of its own (Linux reports a writeback error to every descriptor open when it
//! happened, so one the flusher's `fsync` already met is reported here too), and remembers the
//! first failure of a write or a sync: from then on every change is refused with the same
//! STORAGE_ERROR, which tells the operator to reopen the store, and nothing more is
//! acknowledged. Reopening recovers what reached the disk, which holds every change
//! acknowledged before the failure.

use std::fs::File;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{DiskFault, Error, Result};

/// The store's disk health: the first failure of a write or a sync, and the log file to sync.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// The first failure (its kind and what the system said), repeated to every later change.
    failure: Mutex<Option<(DiskFault, String)>>,
    /// sled's log file (`<store>/db`), opened by the store itself; none for a temporary store.
    log: Option<File>,
    /// The store directory; none for a temporary store.
    dir: Option<PathBuf>,
}

impl Health {
    /// The health of the store in `path` (None: a temporary store, never synced).
    pub fn open(path: Option<&Path>) -> Result<Health> {
        let log = match path {
            Some(path) => {
                let file = path.join("db");
                Some(File::open(&file).map_err(|err| from_io(&err, &file.display().to_string()))?)
            }
            None => None,
        };
        Ok(Health {
            failure: Mutex::new(None),
            log,
            dir: path.map(Path::to_owned),
        })
    }

    /// The store directory (none for a temporary store).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Fails with the remembered failure, if a write or a sync failed since the store opened.
    pub fn check(&self) -> Result<()> {
        match &*self.failure.lock() {
            Some((fault, detail)) => Err(Error::DiskFault {
                fault: *fault,
                in_doubt: false,
                detail: detail.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Passes on the result of a change's writes or flush, remembering a disk failure in it:
    /// the change that met it had begun writing, so whether it was saved is not known.
    pub fn watch<T>(&self, result: Result<T>) -> Result<T> {
        match result {
            Err(Error::DiskFault { fault, detail, .. }) => {
                self.failure
                    .lock()
                    .get_or_insert_with(|| (fault, detail.clone()));
                Err(Error::DiskFault {
                    fault,
                    in_doubt: true,
                    detail,
                })
            }
            other => other,
        }
    }

    /// [`Health::check`] for a change whose writes are done and wait to be made durable: a
    /// failure met since may have left them on disk or not.
    pub fn check_written(&self) -> Result<()> {
        self.check().map_err(|err| match err {
            Error::DiskFault { fault, detail, .. } => Error::DiskFault {
                fault,
                in_doubt: true,
                detail,
            },
            other => other,
        })
    }

    /// Syncs the log file (data and metadata: sled's `sync_file_range` leaves the file's size
    /// and the disk's write cache to this).
    pub fn sync(&self) -> Result<()> {
        match &self.log {
            Some(log) => log.sync_all().map_err(|err| from_io(&err, "fsync")),
            None => Ok(()),
        }
    }
}

/// The last handle on a store's sled database: closing it runs sled's last flush and sync,
/// and sled 0.34 panics when that sync fails (`Log::drop` unwraps it) unless its own writes
/// failed before. A library does not panic on an I/O error: the panic is caught here and the
/// store is closed all the same (what reached the disk is recovered on the next open).
#[derive(Debug)]
pub(crate) struct Closing(pub Option<sled::Db>);

impl Drop for Closing {
    fn drop(&mut self) {
        let db = self.0.take();
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(db)));
        if closed.is_err() {
            tracing::error!("closing the embedded store: its last sync failed");
        }
    }
}

/// The error for a sled error: a disk fault when the system reported a full disk or an I/O
/// error, damage when sled found its files corrupt, a plain storage error otherwise.
pub(crate) fn from_sled(err: sled::Error) -> Error {
    match &err {
        sled::Error::Io(io) => match fault_of(io) {
            Some(fault) => Error::DiskFault {
                fault,
                in_doubt: false,
                detail: io_detail(io),
            },
            None => Error::storage(err),
        },
        sled::Error::Corruption { .. } => Error::StoreDamaged {
            path: String::new(),
            detail: err.to_string(),
        },
        _ => Error::storage(err),
    }
}

/// The error for an I/O error of the store's own (`what` names the call or the file).
pub(crate) fn from_io(err: &std::io::Error, what: &str) -> Error {
    match fault_of(err) {
        Some(fault) => Error::DiskFault {
            fault,
            in_doubt: false,
            detail: format!("{what}: {}", io_detail(err)),
        },
        None => Error::storage(format!("{what}: {err}")),
    }
}

/// ENOSPC (and EDQUOT, a full quota) is a full disk; EIO an I/O error. sled hands on a stored
/// error as a copy that keeps the kind and the debug text but not the OS code, hence the text.
fn fault_of(err: &std::io::Error) -> Option<DiskFault> {
    const ENOSPC: i32 = 28;
    const EIO: i32 = 5;
    const EDQUOT: i32 = 122;
    match err.raw_os_error() {
        Some(ENOSPC | EDQUOT) => return Some(DiskFault::Full),
        Some(EIO) => return Some(DiskFault::Io),
        Some(_) => return None,
        None => {}
    }
    if matches!(
        err.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) {
        return Some(DiskFault::Full);
    }
    let text = err.to_string();
    if text.contains("code: 5,") {
        Some(DiskFault::Io)
    } else if text.contains("code: 28,") || text.contains("code: 122,") {
        Some(DiskFault::Full)
    } else {
        None
    }
}

/// What the system said, without the debug dressing of sled's copies.
fn io_detail(err: &std::io::Error) -> String {
    let text = err.to_string();
    match (text.find("message: \""), text.rfind('"')) {
        (Some(start), Some(end)) if start + 10 < end => text[start + 10..end].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_and_sleds_copies_of_them_are_classified() {
        let full = std::io::Error::from_raw_os_error(28);
        let eio = std::io::Error::from_raw_os_error(5);
        assert_eq!(fault_of(&full), Some(DiskFault::Full));
        assert_eq!(fault_of(&eio), Some(DiskFault::Io));
        // sled's Clone of an I/O error: the kind and the debug text only.
        let copy = |err: &std::io::Error| std::io::Error::new(err.kind(), format!("{err:?}"));
        assert_eq!(fault_of(&copy(&full)), Some(DiskFault::Full));
        assert_eq!(fault_of(&copy(&eio)), Some(DiskFault::Io));
        assert_eq!(io_detail(&copy(&eio)), "Input/output error");
        assert_eq!(
            fault_of(&std::io::Error::from_raw_os_error(13)),
            None,
            "EACCES is not a disk fault"
        );
    }

    #[test]
    fn the_first_failure_is_remembered_and_repeated() {
        let health = Health::default();
        assert!(health.check().is_ok());
        let _ = health.watch::<()>(Err(from_io(&std::io::Error::from_raw_os_error(5), "fsync")));
        let _ = health.watch::<()>(Err(from_io(&std::io::Error::from_raw_os_error(28), "x")));
        match health.check() {
            Err(Error::DiskFault { fault, detail, .. }) => {
                assert_eq!(fault, DiskFault::Io);
                assert!(detail.starts_with("fsync"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }
}
