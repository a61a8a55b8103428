use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;

/// A point in time, in milliseconds since the Unix epoch (UTC).
///
/// Verifiers take "now" as one of these; nothing in plinth's verifier crates reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(u64);

impl UnixTime {
    /// From whole seconds since the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// From milliseconds since the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Half-way from `self` to `later` (the moment to renew a credential issued at `self`
    /// that expires at `later`); `self` when `later` is not after it.
    #[must_use]
    pub const fn halfway_to(self, later: Self) -> Self {
        Self(self.0.saturating_add(later.0.saturating_sub(self.0) / 2))
    }

    /// Parses RFC 3339 (`2024-01-24T18:14:25Z`) or a decimal count of Unix milliseconds.
    ///
    /// # Errors
    /// [`Error::Time`] when the text is neither, or lies before the epoch.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse::<u64>()
                .map(Self::from_millis)
                .map_err(|e| Error::Time(e.to_string()));
        }
        let parsed =
            OffsetDateTime::parse(text, &Rfc3339).map_err(|e| Error::Time(e.to_string()))?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        u64::try_from(millis)
            .map(Self)
            .map_err(|_| Error::Time("before the Unix epoch".into()))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let formatted = i128::from(self.0)
            .checked_mul(1_000_000)
            .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
            .and_then(|t| t.format(&Rfc3339).ok());
        match formatted {
            Some(text) => f.write_str(&text),
            None => write!(f, "{}ms", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halfway_to_is_the_midpoint_and_never_before_the_start() {
        let issued = UnixTime::from_millis(1_000);
        assert_eq!(
            issued.halfway_to(UnixTime::from_millis(3_001)).as_millis(),
            2_000
        );
        assert_eq!(issued.halfway_to(UnixTime::from_millis(500)), issued);
        assert_eq!(issued.halfway_to(issued), issued);
    }

    #[test]
    fn parses_rfc3339_and_millis() {
        let t = UnixTime::parse("2024-01-24T18:14:25.635Z").unwrap();
        assert_eq!(t.as_millis(), 1_706_120_065_635);
        assert_eq!(UnixTime::parse("1706120065635").unwrap(), t);
        assert_eq!(t.to_string(), "2024-01-24T18:14:25.635Z");
    }

    #[test]
    fn rejects_garbage_and_pre_epoch() {
        assert!(matches!(UnixTime::parse("yesterday"), Err(Error::Time(_))));
        assert!(matches!(
            UnixTime::parse("1969-12-31T23:59:59Z"),
            Err(Error::Time(_))
        ));
    }
}
