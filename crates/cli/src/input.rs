//! Reading evidence files in whatever encoding they arrive: PEM, base64, hex or raw bytes.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;

/// Reads `path` and decodes it, detecting the encoding:
/// PEM (first block) → its DER; all-hex text → bytes; base64 text → bytes; otherwise raw.
pub(crate) fn read_evidence(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(decode_evidence(bytes))
}

/// Reads every PEM block of `path` (or, if it holds no PEM, the whole decoded file as one).
pub(crate) fn read_pem_blocks(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let blocks = std::str::from_utf8(&bytes)
        .map(pem_blocks)
        .unwrap_or_default();
    if blocks.is_empty() {
        Ok(vec![decode_evidence(bytes)])
    } else {
        Ok(blocks)
    }
}

/// The detection behind [`read_evidence`].
pub(crate) fn decode_evidence(bytes: Vec<u8>) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return bytes;
    };
    if let Some(first) = pem_blocks(text).into_iter().next() {
        return first;
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return bytes;
    }
    if compact.len().is_multiple_of(2)
        && compact.bytes().all(|b| b.is_ascii_hexdigit())
        && let Ok(decoded) = hex::decode(&compact)
    {
        return decoded;
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|engine| engine.decode(&compact).ok())
        .unwrap_or(bytes)
}

fn pem_blocks(text: &str) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("-----BEGIN ") {
            body = Some(String::new());
        } else if line.starts_with("-----END ") {
            if let Some(b64) = body.take()
                && let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64)
            {
                blocks.push(der);
            }
        } else if let Some(b64) = body.as_mut() {
            b64.push_str(line);
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_encoding() {
        let raw = vec![0x30, 0x82, 0x01, 0xff, 0x00];
        assert_eq!(decode_evidence(raw.clone()), raw);
        assert_eq!(decode_evidence(b"30820 1ff00\n".to_vec()), raw);
        assert_eq!(decode_evidence(b"MIIB/wA=\n".to_vec()), raw);
        let pem = b"-----BEGIN CERTIFICATE-----\nMIIB/wA=\n-----END CERTIFICATE-----\n";
        assert_eq!(decode_evidence(pem.to_vec()), raw);
    }
}
