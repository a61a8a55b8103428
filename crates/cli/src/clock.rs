//! The one place the CLI reads the system clock: verifiers are handed the time.

use std::time::SystemTime;

use anyhow::{Context, Result};
use plinth_core::UnixTime;

/// The verification time: `--at` when given (RFC 3339 or Unix milliseconds), otherwise the
/// system clock. A clock before the epoch is an error, never a default.
pub(crate) fn verification_time(at: Option<&str>) -> Result<UnixTime> {
    if let Some(text) = at {
        return UnixTime::parse(text).context("--at must be RFC 3339 or Unix milliseconds");
    }
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .context("the system clock is before the Unix epoch")?;
    let millis =
        u64::try_from(since_epoch.as_millis()).context("the system clock is out of range")?;
    Ok(UnixTime::from_millis(millis))
}
