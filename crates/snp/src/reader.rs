//! The one way untrusted SNP bytes are read: a bounds-checked little-endian cursor.

use crate::Error;

/// A cursor over one structure. Every read names the structure in its error.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    consumed: usize,
    structure: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8], structure: &'static str) -> Self {
        Self {
            bytes,
            consumed: 0,
            structure,
        }
    }

    /// How many bytes have been read so far: the offset of the next field.
    pub(crate) const fn offset(&self) -> usize {
        self.consumed
    }

    /// Takes the next `len` bytes.
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        let Some((head, tail)) = self.bytes.split_at_checked(len) else {
            return Err(Error::Truncated {
                structure: self.structure,
                len: self.consumed.saturating_add(self.bytes.len()),
                needed: self.consumed.saturating_add(len),
            });
        };
        self.bytes = tail;
        self.consumed = self.consumed.saturating_add(len);
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let structure = self.structure;
        let bytes = self.take(N)?;
        // `take` returned exactly N bytes; the conversion cannot fail, but fail closed anyway.
        <[u8; N]>::try_from(bytes).map_err(|_| Error::Truncated {
            structure,
            len: 0,
            needed: N,
        })
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        self.array::<1>().map(|[b]| b)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        self.array().map(u64::from_le_bytes)
    }

    /// Skips reserved bytes up to absolute offset `to` (the layout's next field).
    pub(crate) fn skip_to(&mut self, to: usize) -> Result<(), Error> {
        let len = to.checked_sub(self.consumed).ok_or(Error::Truncated {
            structure: self.structure,
            len: self.consumed,
            needed: to,
        })?;
        self.take(len).map(|_| ())
    }

    /// Ends the structure: anything left over is an error.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingData {
                structure: self.structure,
                extra: self.bytes.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_reports_truncation() {
        let mut r = Reader::new(&[1, 0, 0, 0, 2, 0], "T");
        assert_eq!(r.u32(), Ok(1));
        assert_eq!(r.offset(), 4);
        assert_eq!(
            r.u32(),
            Err(Error::Truncated {
                structure: "T",
                len: 6,
                needed: 8
            })
        );
    }

    #[test]
    fn trailing_data() {
        let mut r = Reader::new(&[1, 2, 3], "T");
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(
            r.finish(),
            Err(Error::TrailingData {
                structure: "T",
                extra: 2
            })
        );
    }
}
