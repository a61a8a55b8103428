//! Where the certificates come from: the extended report's certificate table, files given
//! by the caller, or an offline store keyed by product, hwID and TCB.
//!
//! None of these sources is trusted. Whatever they supply is verified against the pinned
//! ARK; an ARK inside the evidence is ignored.

use std::collections::BTreeMap;

use plinth_x509::Certificate;

use crate::reader::Reader;
use crate::vek::EndorsementKey;
use crate::{
    AttestationReport, Crl, Error, Product, SigningKey, TcbComponent, TcbLayout, TcbVersion,
};

/// The largest certificate table accepted (the GHCB protocol hands the guest a few pages).
pub const MAX_CERT_TABLE_LEN: usize = 64 * 1024;
/// The most entries a certificate table may have.
pub const MAX_CERT_TABLE_ENTRIES: usize = 16;
/// The most intermediates and CRLs one [`Collateral`] may hold.
pub const MAX_COLLATERAL_ITEMS: usize = 8;

/// What a certificate table entry holds, by its GUID (GHCB specification, "SNP Extended
/// Guest Request"). GUIDs are compared in RFC 4122 byte order, as the host tooling
/// (snphost, QEMU, virtee/sev, go-sev-guest) writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertKind {
    /// AMD Root Key, `c0b406a4-a803-4952-9743-3fb6014cd0ae` (ignored: the ARK is pinned).
    Ark,
    /// AMD SEV Key (or ASVK), `4ab7b379-bbac-4fe4-a02f-05aef327c782`.
    Ask,
    /// VCEK, `63da758d-e664-4564-adc5-f4b93be8accd`.
    Vcek,
    /// VLEK, `a8074bc2-a25a-483e-aae6-39c045a0b8a1`.
    Vlek,
    /// Certificate revocation list, `92f81bc3-5811-4d3d-97ff-d19f88dc67ea`.
    Crl,
    /// Any other GUID (vendor data); ignored.
    Other([u8; 16]),
}

const GUIDS: [(CertKind, [u8; 16]); 5] = [
    (
        CertKind::Ark,
        guid(
            0xc0b4_06a4,
            0xa803,
            0x4952,
            [0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae],
        ),
    ),
    (
        CertKind::Ask,
        guid(
            0x4ab7_b379,
            0xbbac,
            0x4fe4,
            [0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82],
        ),
    ),
    (
        CertKind::Vcek,
        guid(
            0x63da_758d,
            0xe664,
            0x4564,
            [0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd],
        ),
    ),
    (
        CertKind::Vlek,
        guid(
            0xa807_4bc2,
            0xa25a,
            0x483e,
            [0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1],
        ),
    ),
    (
        CertKind::Crl,
        guid(
            0x92f8_1bc3,
            0x5811,
            0x4d3d,
            [0x97, 0xff, 0xd1, 0x9f, 0x88, 0xdc, 0x67, 0xea],
        ),
    ),
];

/// A GUID's 16 bytes in RFC 4122 (big-endian) order.
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_be_bytes();
    let b = b.to_be_bytes();
    let c = c.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

impl CertKind {
    fn from_guid(bytes: [u8; 16]) -> Self {
        GUIDS
            .iter()
            .find(|(_, g)| *g == bytes)
            .map_or(Self::Other(bytes), |(kind, _)| *kind)
    }

    /// The entry's GUID bytes.
    pub fn guid(self) -> [u8; 16] {
        match self {
            Self::Other(bytes) => bytes,
            known => GUIDS
                .iter()
                .find(|(k, _)| *k == known)
                .map_or([0; 16], |(_, g)| *g),
        }
    }
}

/// One certificate table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertTableEntry<'a> {
    /// What it holds.
    pub kind: CertKind,
    /// Its bytes (a DER certificate or CRL).
    pub data: &'a [u8],
}

/// The certificate table of an extended report: 24-byte entries (GUID, offset and length,
/// little-endian, offsets from the start of the table) ended by an all-zero entry, then
/// the data. Parsing checks bounds and budgets only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertTable<'a> {
    entries: Vec<CertTableEntry<'a>>,
}

impl<'a> CertTable<'a> {
    /// Parses a certificate table.
    ///
    /// # Errors
    /// [`Error::CertTable`] when it is larger than the budget, has too many entries, no
    /// terminator, an entry pointing outside the buffer or into the entry list, or the same
    /// known GUID twice.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_CERT_TABLE_LEN {
            return Err(Error::CertTable("larger than the size budget"));
        }
        let mut r = Reader::new(bytes, "certificate table");
        let mut raw = Vec::new();
        loop {
            let guid: [u8; 16] = r
                .array()
                .map_err(|_| Error::CertTable("no terminating entry"))?;
            let offset = r
                .u32()
                .map_err(|_| Error::CertTable("no terminating entry"))?;
            let length = r
                .u32()
                .map_err(|_| Error::CertTable("no terminating entry"))?;
            if guid == [0; 16] {
                break;
            }
            if raw.len() >= MAX_CERT_TABLE_ENTRIES {
                return Err(Error::CertTable("more entries than the budget"));
            }
            raw.push((guid, offset, length));
        }
        let entries_end = r.offset();
        let mut entries: Vec<CertTableEntry<'a>> = Vec::with_capacity(raw.len());
        for (guid, offset, length) in raw {
            let start =
                usize::try_from(offset).map_err(|_| Error::CertTable("entry out of bounds"))?;
            let len =
                usize::try_from(length).map_err(|_| Error::CertTable("entry out of bounds"))?;
            if start < entries_end {
                return Err(Error::CertTable("entry overlaps the entry list"));
            }
            let data = start
                .checked_add(len)
                .and_then(|end| bytes.get(start..end))
                .ok_or(Error::CertTable("entry out of bounds"))?;
            let kind = CertKind::from_guid(guid);
            if !matches!(kind, CertKind::Other(_)) && entries.iter().any(|e| e.kind == kind) {
                return Err(Error::CertTable("a GUID appears twice"));
            }
            entries.push(CertTableEntry { kind, data });
        }
        Ok(Self { entries })
    }

    /// The entries, in table order.
    pub fn entries(&self) -> &[CertTableEntry<'a>] {
        &self.entries
    }

    /// The data of the entry of `kind`, if present.
    pub fn get(&self, kind: CertKind) -> Option<&'a [u8]> {
        self.entries.iter().find(|e| e.kind == kind).map(|e| e.data)
    }
}

/// The certificates (and CRLs) one report is verified with: a VCEK and/or VLEK, the
/// intermediates, and optionally AMD CRLs. Nothing here is trusted yet.
#[derive(Debug, Clone, Default)]
pub struct Collateral {
    vcek: Option<EndorsementKey>,
    vlek: Option<EndorsementKey>,
    intermediates: Vec<Certificate>,
    crls: Vec<Crl>,
}

impl Collateral {
    /// Empty collateral.
    pub fn new() -> Self {
        Self::default()
    }

    /// Collateral from an extended report's certificate table: its VCEK and/or VLEK, its
    /// ASK (or ASVK) and its CRL. The table's ARK is ignored: the pinned one is used.
    ///
    /// # Errors
    /// As [`Self::add_endorsement`], [`Self::add_intermediate`] and [`Self::add_crl`].
    pub fn from_cert_table(table: &CertTable<'_>) -> Result<Self, Error> {
        let mut collateral = Self::new();
        for entry in table.entries() {
            match entry.kind {
                CertKind::Vcek => collateral.add_vcek(entry.data)?,
                CertKind::Vlek => collateral.add_vlek(entry.data)?,
                CertKind::Ask => collateral.add_intermediate(entry.data)?,
                CertKind::Crl => collateral.add_crl(entry.data)?,
                CertKind::Ark | CertKind::Other(_) => {}
            }
        }
        Ok(collateral)
    }

    /// Adds a VCEK or VLEK, recognised by its subject (`SEV-VCEK` / `SEV-VLEK`).
    ///
    /// # Errors
    /// As [`EndorsementKey::from_der`]; [`Error::DuplicateCertificate`] when one of that
    /// kind is already present.
    pub fn add_endorsement(&mut self, der: &[u8]) -> Result<(), Error> {
        self.insert_endorsement(EndorsementKey::from_der(der)?)
    }

    fn insert_endorsement(&mut self, key: EndorsementKey) -> Result<(), Error> {
        let slot = match key.kind() {
            SigningKey::Vcek => &mut self.vcek,
            SigningKey::Vlek => &mut self.vlek,
        };
        if slot.is_some() {
            return Err(Error::DuplicateCertificate(key.kind().name()));
        }
        *slot = Some(key);
        Ok(())
    }

    /// Adds a certificate that must be a VCEK.
    ///
    /// # Errors
    /// [`Error::WrongEndorsementKind`] when it is a VLEK; otherwise as
    /// [`Self::add_endorsement`].
    pub fn add_vcek(&mut self, der: &[u8]) -> Result<(), Error> {
        self.add_kind(der, SigningKey::Vcek)
    }

    /// Adds a certificate that must be a VLEK.
    ///
    /// # Errors
    /// [`Error::WrongEndorsementKind`] when it is a VCEK; otherwise as
    /// [`Self::add_endorsement`].
    pub fn add_vlek(&mut self, der: &[u8]) -> Result<(), Error> {
        self.add_kind(der, SigningKey::Vlek)
    }

    fn add_kind(&mut self, der: &[u8], expected: SigningKey) -> Result<(), Error> {
        let key = EndorsementKey::from_der(der)?;
        if key.kind() != expected {
            return Err(Error::WrongEndorsementKind {
                expected,
                found: key.kind(),
            });
        }
        self.add_endorsement(der)
    }

    /// Adds an intermediate (ASK or ASVK). An ARK given here is harmless but unused.
    ///
    /// # Errors
    /// [`Error::Certificate`] when it does not parse; [`Error::TooManyItems`] past the budget.
    pub fn add_intermediate(&mut self, der: &[u8]) -> Result<(), Error> {
        let certificate = Certificate::from_der(der).map_err(|source| Error::Certificate {
            role: "intermediate",
            source,
        })?;
        self.push_intermediate(certificate)
    }

    pub(crate) fn push_intermediate(&mut self, certificate: Certificate) -> Result<(), Error> {
        if self.intermediates.len() >= MAX_COLLATERAL_ITEMS {
            return Err(Error::TooManyItems {
                max: MAX_COLLATERAL_ITEMS,
            });
        }
        if !self.intermediates.contains(&certificate) {
            self.intermediates.push(certificate);
        }
        Ok(())
    }

    /// Adds AMD's intermediates that ship with this crate ([`crate::builtin_intermediates`]).
    ///
    /// # Errors
    /// Only if the shipped files were damaged.
    pub fn with_builtin_intermediates(mut self) -> Result<Self, Error> {
        for certificate in crate::builtin_intermediates()? {
            if !self.intermediates.contains(&certificate) {
                self.intermediates.push(certificate);
            }
        }
        Ok(self)
    }

    /// Adds an AMD CRL; it will be checked against the ARK, and every certificate of the
    /// chain it covers must be absent from it.
    ///
    /// # Errors
    /// As [`Crl::from_der`]; [`Error::TooManyItems`] past the budget.
    pub fn add_crl(&mut self, der: &[u8]) -> Result<(), Error> {
        if self.crls.len() >= MAX_COLLATERAL_ITEMS {
            return Err(Error::TooManyItems {
                max: MAX_COLLATERAL_ITEMS,
            });
        }
        self.crls.push(Crl::from_der(der)?);
        Ok(())
    }

    /// The endorsement key of `kind`, if present.
    pub const fn endorsement(&self, kind: SigningKey) -> Option<&EndorsementKey> {
        match kind {
            SigningKey::Vcek => self.vcek.as_ref(),
            SigningKey::Vlek => self.vlek.as_ref(),
        }
    }

    /// The intermediates.
    pub fn intermediates(&self) -> &[Certificate] {
        &self.intermediates
    }

    /// The CRLs.
    pub fn crls(&self) -> &[Crl] {
        &self.crls
    }
}

/// The TCB levels a VCEK is keyed by in the [`OfflineStore`].
type TcbKey = [Option<u8>; 5];

fn tcb_key(levels: impl Iterator<Item = (TcbComponent, u8)>) -> TcbKey {
    let mut key = [None; 5];
    for (component, level) in levels {
        if let Some(slot) = TcbComponent::ALL
            .iter()
            .position(|c| *c == component)
            .and_then(|i| key.get_mut(i))
        {
            *slot = Some(level);
        }
    }
    key
}

/// VCEKs fetched earlier (from AMD's KDS, by the server or an operator), keyed by product,
/// hwID and TCB, plus intermediates and CRLs: the collateral for reports whose evidence
/// brings no certificates. A pure in-memory structure; loading it is the caller's I/O.
#[derive(Debug, Clone, Default)]
pub struct OfflineStore {
    vceks: BTreeMap<(Product, Vec<u8>, TcbKey), EndorsementKey>,
    intermediates: Vec<Certificate>,
    crls: Vec<Crl>,
}

impl OfflineStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a VCEK under its own product, hwID and TCB extensions.
    ///
    /// # Errors
    /// As [`EndorsementKey::from_der`]; [`Error::WrongEndorsementKind`] for a VLEK.
    pub fn add_vcek(&mut self, der: &[u8]) -> Result<(), Error> {
        let key = EndorsementKey::from_der(der)?;
        let hwid = key
            .hwid()
            .map(<[u8]>::to_vec)
            .ok_or(Error::WrongEndorsementKind {
                expected: SigningKey::Vcek,
                found: key.kind(),
            })?;
        let index = (key.product(), hwid, tcb_key(key.tcb().components()));
        let _replaced = self.vceks.insert(index, key);
        Ok(())
    }

    /// Adds an intermediate (ASK or ASVK).
    ///
    /// # Errors
    /// [`Error::Certificate`] when it does not parse.
    pub fn add_intermediate(&mut self, der: &[u8]) -> Result<(), Error> {
        let certificate = Certificate::from_der(der).map_err(|source| Error::Certificate {
            role: "intermediate",
            source,
        })?;
        if !self.intermediates.contains(&certificate) {
            self.intermediates.push(certificate);
        }
        Ok(())
    }

    /// Adds an AMD CRL.
    ///
    /// # Errors
    /// As [`Crl::from_der`].
    pub fn add_crl(&mut self, der: &[u8]) -> Result<(), Error> {
        self.crls.push(Crl::from_der(der)?);
        Ok(())
    }

    /// How many VCEKs are stored.
    pub fn vcek_count(&self) -> usize {
        self.vceks.len()
    }

    /// The collateral for `report` as if it came from a `product` chip: the VCEK for its
    /// CHIP_ID and REPORTED_TCB, with the store's intermediates and CRLs (only CRLs
    /// would apply to this product's chain are checked by the verifier anyway).
    ///
    /// # Errors
    /// [`Error::MissingCertificate`] when no VCEK matches.
    pub fn collateral_for(
        &self,
        report: &AttestationReport,
        product: Product,
    ) -> Result<Collateral, Error> {
        let hwid = report
            .chip_id()
            .get(..product.hwid_len())
            .unwrap_or_default()
            .to_vec();
        let tcb = TcbVersion::new(report.reported_tcb_raw(), TcbLayout::of(product));
        let vcek = self
            .vceks
            .get(&(product, hwid, tcb_key(tcb.components())))
            .cloned()
            .ok_or(Error::MissingCertificate("VCEK"))?;
        Ok(Collateral {
            vcek: Some(vcek),
            vlek: None,
            intermediates: self.intermediates.clone(),
            crls: self.crls.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY_LEN: usize = 24;

    fn table(entries: &[([u8; 16], &[u8])]) -> Vec<u8> {
        let header = (entries.len() + 1) * ENTRY_LEN;
        let mut out = Vec::new();
        let mut data = Vec::new();
        for (guid, bytes) in entries {
            out.extend_from_slice(guid);
            out.extend(u32::try_from(header + data.len()).unwrap().to_le_bytes());
            out.extend(u32::try_from(bytes.len()).unwrap().to_le_bytes());
            data.extend_from_slice(bytes);
        }
        out.extend([0; ENTRY_LEN]);
        out.extend(data);
        out
    }

    #[test]
    fn guid_bytes_follow_rfc4122_order() {
        assert_eq!(
            hex::encode(CertKind::Vcek.guid()),
            "63da758de6644564adc5f4b93be8accd"
        );
        assert_eq!(CertKind::from_guid(CertKind::Ask.guid()), CertKind::Ask);
    }

    #[test]
    fn parses_entries() {
        let other = [7; 16];
        let bytes = table(&[
            (CertKind::Vcek.guid(), b"vcek"),
            (other, b"x"),
            (CertKind::Ask.guid(), b"ask!"),
        ]);
        let t = CertTable::parse(&bytes).unwrap();
        assert_eq!(t.entries().len(), 3);
        assert_eq!(t.get(CertKind::Vcek), Some(&b"vcek"[..]));
        assert_eq!(t.get(CertKind::Ask), Some(&b"ask!"[..]));
        assert_eq!(t.get(CertKind::Other(other)), Some(&b"x"[..]));
        assert_eq!(t.get(CertKind::Vlek), None);
    }

    #[test]
    fn rejects_bad_tables_with_cert_table() {
        let good = table(&[(CertKind::Vcek.guid(), b"vcek")]);
        // Cut before the terminator.
        assert_eq!(
            CertTable::parse(&good[..30]),
            Err(Error::CertTable("no terminating entry"))
        );
        // Entry running past the end.
        assert_eq!(
            CertTable::parse(&good[..good.len() - 1]),
            Err(Error::CertTable("entry out of bounds"))
        );
        // Entry pointing into the entry list.
        let mut overlap = good.clone();
        overlap[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            CertTable::parse(&overlap),
            Err(Error::CertTable("entry overlaps the entry list"))
        );
        // Same GUID twice.
        let twice = table(&[(CertKind::Vcek.guid(), b"a"), (CertKind::Vcek.guid(), b"b")]);
        assert_eq!(
            CertTable::parse(&twice),
            Err(Error::CertTable("a GUID appears twice"))
        );
        // Too many entries.
        let many: Vec<([u8; 16], &[u8])> = (0u8..17).map(|i| ([i + 1; 16], &b"x"[..])).collect();
        assert_eq!(
            CertTable::parse(&table(&many)),
            Err(Error::CertTable("more entries than the budget"))
        );
    }
}
