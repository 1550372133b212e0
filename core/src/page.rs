//! A page of a listing, newest first, with the cursor of the following page.

use crate::error::{Error, Invalid, Result};
use crate::limits::MAX_PAGE;

/// Checks a page size: 1 to [`MAX_PAGE`] (`VALIDATION_ERROR` on `limit`).
pub(crate) fn check_limit(limit: usize) -> Result<()> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid("limit", Invalid::Limit));
    }
    Ok(())
}

/// A page of records and the cursor that reads the following page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, Cursor> {
    /// The records, newest first.
    pub items: Vec<T>,
    /// The `before` cursor of the following page; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T, Cursor> Page<T, Cursor> {
    /// The page of `limit` items from `rows`, read with one row more than `limit`: the extra
    /// row only says that a following page exists.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: usize, cursor: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        Page {
            next: if more { rows.last().map(cursor) } else { None },
            items: rows,
        }
    }
}
