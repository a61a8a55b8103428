//! UEFI structures carried in event data: GUIDs, UTF-16 names, `EFI_SIGNATURE_LIST`s,
//! device paths, load options and the GPT.
//!
//! These are decoded best-effort: event data is not covered by the quote (only its digest
//! is, and for several event types not even that), so a malformed structure here never
//! fails the log. The decoders return `None` and the event keeps its raw bytes.

use std::fmt;

use plinth_core::HashAlg;
use plinth_crypto::digest;

use crate::codec::Reader;

/// How many device-path nodes are decoded before the rest is kept as raw bytes.
pub const MAX_DEVICE_PATH_NODES: usize = 64;
/// How many entries of one signature database are decoded.
pub const MAX_SIGNATURES: usize = 4096;
/// How many GPT partition entries are decoded.
pub const MAX_GPT_PARTITIONS: usize = 256;

/// A UEFI GUID, kept in its wire form (the first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid([u8; 16]);

impl Guid {
    /// Builds a GUID from its textual fields, for constants.
    pub const fn from_fields(a: u32, b: u16, c: u16, d: [u8; 8]) -> Self {
        let a = a.to_le_bytes();
        let b = b.to_le_bytes();
        let c = c.to_le_bytes();
        Self([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5],
            d[6], d[7],
        ])
    }

    /// The 16 bytes as they appear in firmware structures.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Option<Self> {
        r.take(16)
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(Self)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [
            a0,
            a1,
            a2,
            a3,
            b0,
            b1,
            c0,
            c1,
            d0,
            d1,
            d2,
            d3,
            d4,
            d5,
            d6,
            d7,
        ] = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{d0:02x}{d1:02x}-{d2:02x}{d3:02x}{d4:02x}{d5:02x}{d6:02x}{d7:02x}",
            u32::from_le_bytes([a0, a1, a2, a3]),
            u16::from_le_bytes([b0, b1]),
            u16::from_le_bytes([c0, c1]),
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Well-known GUIDs.
pub mod guids {
    use super::Guid;

    /// `EFI_GLOBAL_VARIABLE`: SecureBoot, PK, KEK, BootOrder, Boot####, DeployedMode.
    pub const EFI_GLOBAL_VARIABLE: Guid = Guid::from_fields(
        0x8be4_df61,
        0x93ca,
        0x11d2,
        [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
    );
    /// `EFI_IMAGE_SECURITY_DATABASE_GUID`: db, dbx, dbt, dbr.
    pub const EFI_IMAGE_SECURITY_DATABASE: Guid = Guid::from_fields(
        0xd719_b2cb,
        0x3d3a,
        0x4596,
        [0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f],
    );
    /// shim's `SHIM_LOCK_GUID`: MokList, MokListX, MokSBState, MokListTrusted.
    pub const SHIM_LOCK: Guid = Guid::from_fields(
        0x605d_ab50,
        0xe046,
        0x4300,
        [0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23],
    );
    /// `EFI_CERT_SHA256_GUID`: a SHA-256 image hash.
    pub const EFI_CERT_SHA256: Guid = Guid::from_fields(
        0xc1c4_1626,
        0x504c,
        0x4092,
        [0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28],
    );
    /// `EFI_CERT_SHA1_GUID`.
    pub const EFI_CERT_SHA1: Guid = Guid::from_fields(
        0x826c_a512,
        0xcf10,
        0x4ac9,
        [0xb1, 0x87, 0xbe, 0x01, 0x49, 0x66, 0x31, 0xbd],
    );
    /// `EFI_CERT_SHA384_GUID`.
    pub const EFI_CERT_SHA384: Guid = Guid::from_fields(
        0xff3e_5307,
        0x9fd0,
        0x48c9,
        [0x85, 0xf1, 0x8a, 0xd5, 0x6c, 0x70, 0x1e, 0x01],
    );
    /// `EFI_CERT_SHA512_GUID`.
    pub const EFI_CERT_SHA512: Guid = Guid::from_fields(
        0x093e_0fae,
        0xa6c4,
        0x4f50,
        [0x9f, 0x1b, 0xd4, 0x1e, 0x2b, 0x89, 0xc1, 0x9a],
    );
    /// `EFI_CERT_X509_GUID`: a DER certificate.
    pub const EFI_CERT_X509: Guid = Guid::from_fields(
        0xa5c0_59a1,
        0x94e4,
        0x4aa7,
        [0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72],
    );
    /// `EFI_CERT_X509_SHA256_GUID`: a SHA-256 of a certificate's TBS, with a revocation time.
    pub const EFI_CERT_X509_SHA256: Guid = Guid::from_fields(
        0x3bd2_a492,
        0x96c0,
        0x4079,
        [0xb4, 0x20, 0xfc, 0xf9, 0x8e, 0xf1, 0x03, 0xed],
    );
    /// `EFI_CERT_RSA2048_GUID`: a bare RSA-2048 modulus.
    pub const EFI_CERT_RSA2048: Guid = Guid::from_fields(
        0x3c57_66e8,
        0x269c,
        0x4e34,
        [0xaa, 0x14, 0xed, 0x77, 0x6e, 0x85, 0xb3, 0xb6],
    );
}

/// Decodes UTF-16LE code units, stopping at the first NUL. `None` for unpaired surrogates
/// or an odd length.
pub(crate) fn utf16_to_string(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair.first().copied()?, pair.get(1).copied()?]).into())
        .take_while(|unit: &Option<u16>| *unit != Some(0))
        .collect::<Option<Vec<u16>>>()?;
    String::from_utf16(&units).ok()
}

/// What an `EFI_SIGNATURE_DATA` holds, by the list's signature type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureValue {
    /// A DER X.509 certificate (`EFI_CERT_X509_GUID`).
    Certificate(CertificateInfo),
    /// An image or certificate-TBS hash (`EFI_CERT_SHA256_GUID` and friends).
    Hash {
        /// The signature type (which hash, and whether of an image or a certificate).
        kind: Guid,
        /// The hash bytes (without any trailing revocation time).
        hash: Vec<u8>,
    },
    /// Any other signature type, kept as received.
    Other {
        /// The signature type.
        kind: Guid,
        /// The data.
        data: Vec<u8>,
    },
}

/// A certificate found in a signature database. Its fingerprint and subject are computed
/// on demand, so that parsing a log never parses X.509.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    der: Vec<u8>,
}

impl CertificateInfo {
    /// Signature databases may pad a certificate to the list's fixed entry size: uniform
    /// 0x00 or 0xFF padding after the outer SEQUENCE is cut.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let der = der_sequence_len(bytes)
            .and_then(|len| {
                let (der, padding) = bytes.split_at_checked(len)?;
                let uniform = padding.iter().all(|&b| b == 0) || padding.iter().all(|&b| b == 0xff);
                uniform.then_some(der)
            })
            .unwrap_or(bytes);
        Self { der: der.to_vec() }
    }

    /// The DER (without padding).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the DER, lower-case hex: how certificates are usually compared.
    pub fn sha256_fingerprint(&self) -> String {
        digest(HashAlg::Sha256, &self.der).to_hex()
    }

    /// The subject distinguished name, when the certificate parses.
    pub fn subject(&self) -> Option<String> {
        plinth_x509::Certificate::from_der(&self.der)
            .ok()
            .map(|cert| cert.subject().to_string())
    }
}

/// The total length of a DER SEQUENCE at the start of `bytes` (header included), if it
/// starts with one whose length fits in three bytes.
fn der_sequence_len(bytes: &[u8]) -> Option<usize> {
    let mut r = Reader::new(bytes, "DER");
    if r.u8().ok()? != 0x30 {
        return None;
    }
    let first = r.u8().ok()?;
    let (header, len) = match first {
        0..=0x7f => (2, usize::from(first)),
        0x81 => (3, usize::from(r.u8().ok()?)),
        0x82 => (4, usize::from(r.u16().ok()?)),
        0x83 => {
            let b = r.take(3).ok()?;
            (
                5,
                b.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x)),
            )
        }
        _ => return None,
    };
    let total = len.checked_add(header)?;
    (total <= bytes.len()).then_some(total)
}

/// One `EFI_SIGNATURE_DATA`: its owner and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    /// `SignatureOwner`.
    pub owner: Guid,
    /// The decoded data.
    pub value: SignatureValue,
}

impl SignatureValue {
    fn new(kind: Guid, data: &[u8]) -> Self {
        let hash_len = match kind {
            guids::EFI_CERT_SHA1 => Some(20),
            guids::EFI_CERT_SHA256 | guids::EFI_CERT_X509_SHA256 => Some(32),
            guids::EFI_CERT_SHA384 => Some(48),
            guids::EFI_CERT_SHA512 => Some(64),
            _ => None,
        };
        if kind == guids::EFI_CERT_X509 {
            return Self::Certificate(CertificateInfo::new(data));
        }
        match hash_len.and_then(|len| data.get(..len)) {
            Some(hash) => Self::Hash {
                kind,
                hash: hash.to_vec(),
            },
            None => Self::Other {
                kind,
                data: data.to_vec(),
            },
        }
    }
}

/// Parses the concatenated `EFI_SIGNATURE_LIST`s of PK, KEK, db, dbx or a MokList.
/// `None` when the structure is malformed.
pub(crate) fn parse_signature_lists(bytes: &[u8]) -> Option<Vec<SignatureEntry>> {
    let mut r = Reader::new(bytes, "EFI_SIGNATURE_LIST");
    let mut entries = Vec::new();
    while r.remaining() > 0 {
        let kind = Guid::read(&mut r)?;
        let list_size = usize::try_from(r.u32_le().ok()?).ok()?;
        let header_size = usize::try_from(r.u32_le().ok()?).ok()?;
        let signature_size = usize::try_from(r.u32_le().ok()?).ok()?;
        let body_len = list_size.checked_sub(28)?.checked_sub(header_size)?;
        let _header = r.take(header_size).ok()?;
        if signature_size < 16 || body_len % signature_size != 0 {
            return None;
        }
        let mut body = Reader::new(r.take(body_len).ok()?, "EFI_SIGNATURE_DATA");
        while body.remaining() > 0 {
            if entries.len() >= MAX_SIGNATURES {
                return None;
            }
            let entry = body.take(signature_size).ok()?;
            let (owner, data) = entry.split_first_chunk::<16>()?;
            entries.push(SignatureEntry {
                owner: Guid(*owner),
                value: SignatureValue::new(kind, data),
            });
        }
    }
    Some(entries)
}

/// Parses one `EFI_SIGNATURE_DATA` (owner GUID, then a certificate), as measured in
/// `EV_EFI_VARIABLE_AUTHORITY` events. Some measurers (shim's built-in vendor certificate)
/// log the bare certificate without an owner: that is accepted too.
pub(crate) fn parse_authority(data: &[u8]) -> Option<SignatureEntry> {
    // A DER SEQUENCE that spans the whole data is a bare certificate.
    if der_sequence_len(data) == Some(data.len()) {
        return Some(SignatureEntry {
            owner: Guid([0; 16]),
            value: SignatureValue::Certificate(CertificateInfo::new(data)),
        });
    }
    let (owner, rest) = data.split_first_chunk::<16>()?;
    if der_sequence_len(rest).is_some() {
        return Some(SignatureEntry {
            owner: Guid(*owner),
            value: SignatureValue::Certificate(CertificateInfo::new(rest)),
        });
    }
    None
}

/// A decoded UEFI device path: its nodes up to the end node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DevicePath {
    /// The nodes, in order.
    pub nodes: Vec<DevicePathNode>,
    /// Bytes that could not be decoded as nodes (after a malformed node, or beyond the
    /// node budget).
    pub undecoded: Vec<u8>,
}

/// One device-path node. Types plinth does not name are kept with their raw data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevicePathNode {
    /// Hardware: PCI function and device.
    Pci {
        /// Function number.
        function: u8,
        /// Device number.
        device: u8,
    },
    /// ACPI: `_HID` and `_UID` (PciRoot when the HID is PNP0A03 or PNP0A08).
    Acpi {
        /// EISA-compressed HID.
        hid: u32,
        /// UID.
        uid: u32,
    },
    /// Messaging: SCSI target and LUN.
    Scsi {
        /// Target.
        target: u16,
        /// LUN.
        lun: u16,
    },
    /// Messaging: SATA port.
    Sata {
        /// HBA port.
        port: u16,
        /// Port multiplier port.
        multiplier_port: u16,
        /// LUN.
        lun: u16,
    },
    /// Messaging: NVMe namespace.
    Nvme {
        /// Namespace identifier.
        namespace: u32,
        /// IEEE EUI-64.
        eui64: u64,
    },
    /// Messaging: USB.
    Usb {
        /// Parent port.
        port: u8,
        /// Interface.
        interface: u8,
    },
    /// Messaging: a URI (HTTP boot).
    Uri(String),
    /// Media: a hard-drive partition.
    HardDrive {
        /// Partition number (1-based).
        partition: u32,
        /// First LBA.
        start: u64,
        /// Size in blocks.
        size: u64,
        /// GPT partition GUID or MBR signature.
        signature: [u8; 16],
        /// 1 = MBR, 2 = GPT.
        signature_type: u8,
    },
    /// Media: a file path (UTF-16 in the structure).
    File(String),
    /// Media: a firmware file in a firmware volume (PIWG).
    FirmwareFile(Guid),
    /// Media: a firmware volume (PIWG).
    FirmwareVolume(Guid),
    /// Any vendor-defined node: its type and vendor GUID.
    Vendor {
        /// Node type.
        node_type: u8,
        /// Vendor GUID.
        guid: Guid,
    },
    /// A node plinth does not decode.
    Other {
        /// Node type.
        node_type: u8,
        /// Node subtype.
        subtype: u8,
        /// Node data (after the 4-byte header).
        data: Vec<u8>,
    },
}

impl DevicePath {
    /// Decodes a device path. Never fails: what cannot be decoded is kept raw.
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        let mut r = Reader::new(bytes, "EFI_DEVICE_PATH");
        let mut path = Self::default();
        while r.remaining() > 0 {
            if path.nodes.len() >= MAX_DEVICE_PATH_NODES {
                path.undecoded = r.rest().to_vec();
                break;
            }
            let before = r.remaining();
            let Some((node_type, subtype, data)) = read_node(&mut r) else {
                // Malformed: keep what is left from this node on.
                let offset = bytes.len().saturating_sub(before);
                path.undecoded = bytes.get(offset..).unwrap_or_default().to_vec();
                break;
            };
            if node_type == 0x7f && subtype == 0xff {
                break;
            }
            path.nodes
                .push(DevicePathNode::decode(node_type, subtype, data));
        }
        path
    }

    /// The last file-path node, if any: usually the loaded image's path on its partition.
    pub fn file(&self) -> Option<&str> {
        self.nodes.iter().rev().find_map(|node| match node {
            DevicePathNode::File(path) => Some(path.as_str()),
            _ => None,
        })
    }
}

fn read_node<'a>(r: &mut Reader<'a>) -> Option<(u8, u8, &'a [u8])> {
    let node_type = r.u8().ok()?;
    let subtype = r.u8().ok()?;
    let len = usize::from(r.u16_le().ok()?);
    let data = r.take(len.checked_sub(4)?).ok()?;
    Some((node_type, subtype, data))
}

impl DevicePathNode {
    fn decode(node_type: u8, subtype: u8, data: &[u8]) -> Self {
        Self::decode_known(node_type, subtype, data).unwrap_or_else(|| Self::Other {
            node_type,
            subtype,
            data: data.to_vec(),
        })
    }

    fn decode_known(node_type: u8, subtype: u8, data: &[u8]) -> Option<Self> {
        let mut r = Reader::new(data, "device path node");
        let node = match (node_type, subtype) {
            (1, 1) => Self::Pci {
                function: r.u8().ok()?,
                device: r.u8().ok()?,
            },
            (2, 1) => Self::Acpi {
                hid: r.u32_le().ok()?,
                uid: r.u32_le().ok()?,
            },
            (3, 2) => Self::Scsi {
                target: r.u16_le().ok()?,
                lun: r.u16_le().ok()?,
            },
            (3, 5) => Self::Usb {
                port: r.u8().ok()?,
                interface: r.u8().ok()?,
            },
            (3, 18) => Self::Sata {
                port: r.u16_le().ok()?,
                multiplier_port: r.u16_le().ok()?,
                lun: r.u16_le().ok()?,
            },
            (3, 23) => Self::Nvme {
                namespace: r.u32_le().ok()?,
                eui64: r.u64_le().ok()?,
            },
            (3, 24) => Self::Uri(String::from_utf8_lossy(r.rest()).into_owned()),
            (1 | 3 | 4, 4 | 10 | 3) if is_vendor(node_type, subtype) => Self::Vendor {
                node_type,
                guid: Guid::read(&mut r)?,
            },
            (4, 1) => Self::HardDrive {
                partition: r.u32_le().ok()?,
                start: r.u64_le().ok()?,
                size: r.u64_le().ok()?,
                signature: <[u8; 16]>::try_from(r.take(16).ok()?).ok()?,
                signature_type: {
                    let _mbr_type = r.u8().ok()?;
                    r.u8().ok()?
                },
            },
            (4, 4) => Self::File(utf16_to_string(r.rest())?),
            (4, 6) => Self::FirmwareFile(Guid::read(&mut r)?),
            (4, 7) => Self::FirmwareVolume(Guid::read(&mut r)?),
            _ => return None,
        };
        Some(node)
    }
}

/// Vendor-defined nodes: hardware (1,4), messaging (3,10), media (4,3).
const fn is_vendor(node_type: u8, subtype: u8) -> bool {
    matches!((node_type, subtype), (1, 4) | (3, 10) | (4, 3))
}

impl fmt::Display for DevicePathNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pci { function, device } => write!(f, "Pci({device:#x},{function:#x})"),
            Self::Acpi { hid, uid } => match hid {
                0x0a03_41d0 | 0x0a08_41d0 => write!(f, "PciRoot({uid:#x})"),
                _ => write!(f, "Acpi({hid:#x},{uid:#x})"),
            },
            Self::Scsi { target, lun } => write!(f, "Scsi({target:#x},{lun:#x})"),
            Self::Sata {
                port,
                multiplier_port,
                lun,
            } => {
                write!(f, "Sata({port:#x},{multiplier_port:#x},{lun:#x})")
            }
            Self::Nvme { namespace, eui64 } => write!(f, "NVMe({namespace:#x},{eui64:016x})"),
            Self::Usb { port, interface } => write!(f, "USB({port:#x},{interface:#x})"),
            Self::Uri(uri) => write!(f, "Uri({uri})"),
            Self::HardDrive {
                partition,
                start,
                size,
                signature,
                signature_type,
            } => {
                let signature = if *signature_type == 2 {
                    Guid(*signature).to_string()
                } else {
                    hex::encode(signature.get(..4).unwrap_or_default())
                };
                let kind = if *signature_type == 2 { "GPT" } else { "MBR" };
                write!(f, "HD({partition},{kind},{signature},{start:#x},{size:#x})")
            }
            Self::File(path) => f.write_str(path),
            Self::FirmwareFile(guid) => write!(f, "FvFile({guid})"),
            Self::FirmwareVolume(guid) => write!(f, "Fv({guid})"),
            Self::Vendor { node_type, guid } => {
                let kind = match node_type {
                    1 => "VenHw",
                    3 => "VenMsg",
                    _ => "VenMedia",
                };
                write!(f, "{kind}({guid})")
            }
            Self::Other {
                node_type,
                subtype,
                data,
            } => {
                write!(f, "Path({node_type},{subtype},{})", hex::encode(data))
            }
        }
    }
}

impl fmt::Display for DevicePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, node) in self.nodes.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "{node}")?;
        }
        if !self.undecoded.is_empty() {
            write!(f, "/<{} undecoded bytes>", self.undecoded.len())?;
        }
        Ok(())
    }
}

/// An `EFI_LOAD_OPTION` (the value of a Boot#### variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOption {
    /// `Attributes` (bit 0: active).
    pub attributes: u32,
    /// The description shown in the boot menu.
    pub description: String,
    /// Where the option boots from.
    pub device_path: DevicePath,
    /// Optional data passed to the loaded image.
    pub optional_data: Vec<u8>,
}

impl LoadOption {
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes, "EFI_LOAD_OPTION");
        let attributes = r.u32_le().ok()?;
        let path_len = usize::from(r.u16_le().ok()?);
        // The description is a NUL-terminated UTF-16 string.
        let mut units = Vec::new();
        loop {
            let unit = r.u16_le().ok()?;
            if unit == 0 {
                break;
            }
            units.push(unit);
        }
        let description = String::from_utf16(&units).ok()?;
        let device_path = DevicePath::parse(r.take(path_len).ok()?);
        Some(Self {
            attributes,
            description,
            device_path,
            optional_data: r.rest().to_vec(),
        })
    }
}

/// One GPT partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    /// Partition type GUID.
    pub type_guid: Guid,
    /// Unique partition GUID.
    pub unique_guid: Guid,
    /// First LBA.
    pub start_lba: u64,
    /// Last LBA (inclusive).
    pub end_lba: u64,
    /// Attribute bits.
    pub attributes: u64,
    /// Partition name.
    pub name: String,
}

/// A `UEFI_GPT_DATA`: the disk's GPT header and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    /// The disk GUID.
    pub disk_guid: Guid,
    /// The partitions measured.
    pub partitions: Vec<GptPartition>,
}

/// Size of `EFI_PARTITION_TABLE_HEADER` as measured.
const GPT_HEADER_LEN: usize = 92;

impl Gpt {
    pub(crate) fn parse(bytes: &[u8], uintn: usize) -> Option<Self> {
        let mut r = Reader::new(bytes, "UEFI_GPT_DATA");
        let mut header = Reader::new(r.take(GPT_HEADER_LEN).ok()?, "EFI_PARTITION_TABLE_HEADER");
        if header.take(8).ok()? != b"EFI PART" {
            return None;
        }
        let _fixed = header.take(48).ok()?;
        let disk_guid = Guid::read(&mut header)?;
        let _entry_lba = header.u64_le().ok()?;
        let _entries = header.u32_le().ok()?;
        let entry_size = usize::try_from(header.u32_le().ok()?).ok()?;
        let count = read_uintn(&mut r, uintn)?;
        let count = usize::try_from(count)
            .ok()
            .filter(|c| *c <= MAX_GPT_PARTITIONS)?;
        if entry_size < 128 {
            return None;
        }
        let mut partitions = Vec::new();
        for _ in 0..count {
            let mut e = Reader::new(r.take(entry_size).ok()?, "EFI_PARTITION_ENTRY");
            partitions.push(GptPartition {
                type_guid: Guid::read(&mut e)?,
                unique_guid: Guid::read(&mut e)?,
                start_lba: e.u64_le().ok()?,
                end_lba: e.u64_le().ok()?,
                attributes: e.u64_le().ok()?,
                name: utf16_to_string(e.take(72).ok()?)?,
            });
        }
        Some(Self {
            disk_guid,
            partitions,
        })
    }
}

/// Reads a UINTN of the firmware's width (4 or 8 bytes, from the Spec ID event).
pub(crate) fn read_uintn(r: &mut Reader<'_>, uintn: usize) -> Option<u64> {
    if uintn == 4 {
        r.u32_le().ok().map(u64::from)
    } else {
        r.u64_le().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_displays_like_uefi() {
        assert_eq!(
            guids::EFI_GLOBAL_VARIABLE.to_string(),
            "8be4df61-93ca-11d2-aa0d-00e098032b8c"
        );
        assert_eq!(
            guids::SHIM_LOCK.to_string(),
            "605dab50-e046-4300-abb6-3dd810dd8b23"
        );
    }

    #[test]
    fn device_path_renders_nodes() {
        // ACPI PciRoot(0), PCI(1,0), file "\a", end.
        let bytes = [
            2, 1, 12, 0, 0xd0, 0x41, 0x03, 0x0a, 0, 0, 0, 0, // ACPI
            1, 1, 6, 0, 0, 1, // PCI function 0 device 1
            4, 4, 8, 0, b'\\', 0, b'a', 0, // file
            0x7f, 0xff, 4, 0,
        ];
        let path = DevicePath::parse(&bytes);
        assert_eq!(path.to_string(), "PciRoot(0x0)/Pci(0x1,0x0)/\\a");
        assert_eq!(path.file(), Some("\\a"));
    }

    #[test]
    fn malformed_device_path_is_kept_raw() {
        let path = DevicePath::parse(&[4, 4, 2, 0, 9, 9]);
        assert!(path.nodes.is_empty());
        assert_eq!(path.undecoded, vec![4, 4, 2, 0, 9, 9]);
    }

    #[test]
    fn signature_list_rejects_bad_sizes() {
        let mut list = guids::EFI_CERT_SHA256.as_bytes().to_vec();
        list.extend_from_slice(&(28 + 47u32).to_le_bytes()); // not a multiple of 48
        list.extend_from_slice(&0u32.to_le_bytes());
        list.extend_from_slice(&48u32.to_le_bytes());
        list.extend_from_slice(&[0; 47]);
        assert_eq!(parse_signature_lists(&list), None);
    }
}
