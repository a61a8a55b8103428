//! Authenticode digests of PE/COFF images (EFI applications: shim, GRUB, kernels, UKIs),
//! the values UEFI measures into PCR 4 for each boot application and that
//! `[tpm.boot] boot_applications` lists.
//!
//! The digest follows Microsoft's "Windows Authenticode Portable Executable Signature
//! Format": hash the image from the start to the optional header's CheckSum, skip it,
//! hash on to the Certificate Table data directory entry, skip it, hash the rest of the
//! headers (SizeOfHeaders), then each section's raw data in file order, then any data
//! after the last section up to the attribute certificate table (which is excluded).
//!
//! The image is attacker-sized input: it is read only through bounds-checked slices,
//! capped at [`MAX_IMAGE_LEN`] and [`MAX_SECTIONS`], and every malformation is a typed
//! [`PeError`].

use plinth_core::{Digest, HashAlg};
use plinth_crypto::Hasher;

/// The largest image accepted: 512 MiB (a UKI with a large initrd fits).
pub const MAX_IMAGE_LEN: usize = 512 << 20;
/// The most sections accepted (the PE format's loader limit).
pub const MAX_SECTIONS: usize = 96;

/// Why a PE/COFF image could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeError {
    /// The image is larger than [`MAX_IMAGE_LEN`].
    #[error("image is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A structure runs past the end of the image.
    #[error("{structure} runs past the end of the image")]
    Truncated {
        /// Which structure.
        structure: &'static str,
    },
    /// The `MZ` or `PE\0\0` signature is missing.
    #[error("not a PE image: bad {which} signature")]
    BadSignature {
        /// `MZ` or `PE`.
        which: &'static str,
    },
    /// The optional header magic is neither PE32 (0x10b) nor PE32+ (0x20b).
    #[error("unknown optional header magic {magic:#06x}")]
    UnknownMagic {
        /// The magic.
        magic: u16,
    },
    /// More sections than [`MAX_SECTIONS`].
    #[error("{count} sections, more than {max}")]
    TooManySections {
        /// The count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A header field is inconsistent with the image (offsets, sizes).
    #[error("inconsistent {field}")]
    Inconsistent {
        /// Which field.
        field: &'static str,
    },
}

fn bytes<'a>(
    image: &'a [u8],
    offset: usize,
    len: usize,
    structure: &'static str,
) -> Result<&'a [u8], PeError> {
    offset
        .checked_add(len)
        .and_then(|end| image.get(offset..end))
        .ok_or(PeError::Truncated { structure })
}

fn u16_at(image: &[u8], offset: usize, structure: &'static str) -> Result<u16, PeError> {
    let b = bytes(image, offset, 2, structure)?;
    Ok(u16::from_le_bytes([
        b.first().copied().unwrap_or(0),
        b.get(1).copied().unwrap_or(0),
    ]))
}

fn u32_at(image: &[u8], offset: usize, structure: &'static str) -> Result<usize, PeError> {
    let b = bytes(image, offset, 4, structure)?;
    let mut word = [0_u8; 4];
    word.copy_from_slice(b);
    usize::try_from(u32::from_le_bytes(word))
        .map_err(|_| PeError::Inconsistent { field: structure })
}

fn add(a: usize, b: usize, field: &'static str) -> Result<usize, PeError> {
    a.checked_add(b).ok_or(PeError::Inconsistent { field })
}

/// The ranges of the image the Authenticode digest covers, in order.
fn hashed_ranges(image: &[u8]) -> Result<Vec<(usize, usize)>, PeError> {
    if image.len() > MAX_IMAGE_LEN {
        return Err(PeError::TooLarge {
            len: image.len(),
            max: MAX_IMAGE_LEN,
        });
    }
    if bytes(image, 0, 2, "DOS header")? != b"MZ" {
        return Err(PeError::BadSignature { which: "MZ" });
    }
    let pe = u32_at(image, 0x3c, "DOS header")?;
    if bytes(image, pe, 4, "PE signature")? != b"PE\0\0" {
        return Err(PeError::BadSignature { which: "PE" });
    }
    let coff = add(pe, 4, "e_lfanew")?;
    let sections = usize::from(u16_at(image, add(coff, 2, "COFF header")?, "COFF header")?);
    let optional_len = usize::from(u16_at(image, add(coff, 16, "COFF header")?, "COFF header")?);
    let optional = add(coff, 20, "COFF header")?;
    let _optional_header = bytes(image, optional, optional_len, "optional header")?;
    let magic = u16_at(image, optional, "optional header")?;
    let (directories_at, count_at) = match magic {
        0x10b => (96, 92),
        0x20b => (112, 108),
        magic => return Err(PeError::UnknownMagic { magic }),
    };
    let checksum = add(optional, 64, "optional header")?;
    let headers_len = u32_at(
        image,
        add(optional, 60, "optional header")?,
        "optional header",
    )?;
    let directories = u32_at(
        image,
        add(optional, count_at, "optional header")?,
        "optional header",
    )?;
    if headers_len > image.len() || checksum.saturating_add(4) > headers_len {
        return Err(PeError::Inconsistent {
            field: "SizeOfHeaders",
        });
    }
    if sections > MAX_SECTIONS {
        return Err(PeError::TooManySections {
            count: sections,
            max: MAX_SECTIONS,
        });
    }
    // The Certificate Table entry (data directory 4), when the header has one.
    let mut ranges = vec![(0, checksum)];
    let (mut certificates, mut certificates_len) = (image.len(), 0);
    let after_checksum = add(checksum, 4, "optional header")?;
    if directories > 4 {
        let entry = add(optional, directories_at + 4 * 8, "data directories")?;
        if add(entry, 8, "data directories")? > add(optional, optional_len, "optional header")? {
            return Err(PeError::Inconsistent {
                field: "NumberOfRvaAndSizes",
            });
        }
        let offset = u32_at(image, entry, "data directories")?;
        let len = u32_at(
            image,
            add(entry, 4, "data directories")?,
            "data directories",
        )?;
        if len > 0 {
            if add(offset, len, "Certificate Table")? > image.len() || offset < headers_len {
                return Err(PeError::Inconsistent {
                    field: "Certificate Table",
                });
            }
            (certificates, certificates_len) = (offset, len);
        }
        ranges.push((after_checksum, entry));
        ranges.push((add(entry, 8, "data directories")?, headers_len));
    } else {
        ranges.push((after_checksum, headers_len));
    }
    // Sections, in file order.
    let table = add(optional, optional_len, "section table")?;
    let raw = section_data(image, table, sections)?;
    let mut hashed = headers_len;
    for (offset, size) in raw {
        ranges.push((offset, add(offset, size, "section data")?));
        hashed = add(hashed, size, "section data")?;
    }
    // Data after the sections, up to the certificate table (excluded).
    let end = if certificates_len > 0 {
        certificates
    } else {
        image.len()
    };
    if end > hashed {
        ranges.push((hashed, end));
    }
    Ok(ranges)
}

/// Each section's raw data `(offset, size)`, in file order.
fn section_data(
    image: &[u8],
    table: usize,
    sections: usize,
) -> Result<Vec<(usize, usize)>, PeError> {
    let mut raw: Vec<(usize, usize)> = Vec::with_capacity(sections);
    for i in 0..sections {
        let header = add(table, i * 40, "section table")?;
        let _header = bytes(image, header, 40, "section table")?;
        let size = u32_at(image, add(header, 16, "section table")?, "section table")?;
        let offset = u32_at(image, add(header, 20, "section table")?, "section table")?;
        if size > 0 {
            let _data = bytes(image, offset, size, "section data")?;
            raw.push((offset, size));
        }
    }
    raw.sort_unstable();
    Ok(raw)
}

/// The Authenticode digest of `image` with `alg`.
///
/// # Errors
/// A [`PeError`] naming the malformation.
pub fn authenticode_digest(image: &[u8], alg: HashAlg) -> Result<Digest, PeError> {
    let ranges = hashed_ranges(image)?;
    let mut hasher = Hasher::new(alg);
    for (start, end) in ranges {
        let part = image.get(start..end).ok_or(PeError::Truncated {
            structure: "hashed range",
        })?;
        hasher.update(part);
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_pe_with_bad_signature() {
        assert_eq!(
            authenticode_digest(
                b"ZMxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                HashAlg::Sha256
            ),
            Err(PeError::BadSignature { which: "MZ" })
        );
        assert_eq!(
            authenticode_digest(b"MZ", HashAlg::Sha256),
            Err(PeError::Truncated {
                structure: "DOS header"
            })
        );
    }
}
