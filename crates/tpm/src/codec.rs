//! The one way untrusted TPM bytes are read: a bounds-checked big-endian cursor.

use crate::Error;

/// A cursor over one TPM structure. Every read names the structure in its error.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    structure: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8], structure: &'static str) -> Self {
        Self { bytes, structure }
    }

    /// Takes the next `len` bytes.
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        if len > self.bytes.len() {
            return Err(Error::Truncated {
                structure: self.structure,
            });
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| Error::Truncated {
            structure: self.structure,
        })
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        self.array::<1>().map(|[b]| b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        self.array().map(u64::from_be_bytes)
    }

    /// Little-endian reads, for the TCG event log and UEFI structures (TPM structures are
    /// big-endian; firmware writes its own structures in the CPU's byte order).
    pub(crate) fn u16_le(&mut self) -> Result<u16, Error> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u32_le(&mut self) -> Result<u32, Error> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, Error> {
        self.array().map(u64::from_le_bytes)
    }

    /// How many bytes are left.
    pub(crate) const fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Takes everything that is left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    /// Reads a TPM2B: a 16-bit size, then that many bytes, which may not exceed `max`.
    pub(crate) fn tpm2b(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], Error> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(Error::TooLarge { field, len, max });
        }
        self.take(len)
    }

    /// Ends the structure: anything left over is an error.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                structure: self.structure,
                extra: self.bytes.len(),
            })
        }
    }
}

/// Appends a TPM2B (16-bit big-endian size, then the bytes) to `out`.
pub(crate) fn put_tpm2b(out: &mut Vec<u8>, field: &'static str, bytes: &[u8]) -> Result<(), Error> {
    let len = u16::try_from(bytes.len()).map_err(|_| Error::TooLarge {
        field,
        len: bytes.len(),
        max: usize::from(u16::MAX),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_trailing() {
        let mut r = Reader::new(&[0, 3, 1, 2], "T");
        assert_eq!(r.tpm2b("f", 8), Err(Error::Truncated { structure: "T" }));
        let mut r = Reader::new(&[0, 1, 9, 7], "T");
        assert_eq!(r.tpm2b("f", 8), Ok(&[9][..]));
        assert_eq!(
            r.finish(),
            Err(Error::TrailingBytes {
                structure: "T",
                extra: 1
            })
        );
    }

    #[test]
    fn too_large() {
        let mut r = Reader::new(&[0, 9], "T");
        assert_eq!(
            r.tpm2b("f", 8),
            Err(Error::TooLarge {
                field: "f",
                len: 9,
                max: 8
            })
        );
    }
}
