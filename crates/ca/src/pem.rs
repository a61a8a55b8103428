//! PEM: certificates out, private keys in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// Encodes DER as one PEM block with the given label (`CERTIFICATE`, `PUBLIC KEY`).
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut rest = body.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decodes the first `PRIVATE KEY` block of a PEM file into a zeroizing buffer.
pub(crate) fn decode_private_key(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    const BEGIN: &[u8] = b"-----BEGIN PRIVATE KEY-----";
    const END: &[u8] = b"-----END PRIVATE KEY-----";
    let start = find(text, BEGIN)?.checked_add(BEGIN.len())?;
    let body = text.get(start..)?;
    let body = body.get(..find(body, END)?)?;
    let mut compact = Zeroizing::new(Vec::with_capacity(body.len()));
    compact.extend(body.iter().copied().filter(|b| !b.is_ascii_whitespace()));
    let mut der = Zeroizing::new(vec![0; compact.len() / 4 * 3 + 3]);
    let len = STANDARD
        .decode_slice(compact.as_slice(), der.as_mut_slice())
        .ok()?;
    der.truncate(len);
    Some(der)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_in_64_column_lines() {
        let pem = encode("CERTIFICATE", &[0xab; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
    }

    #[test]
    fn decodes_a_private_key_block() {
        let pem = encode("PRIVATE KEY", b"secret bytes");
        assert_eq!(
            decode_private_key(pem.as_bytes()).unwrap().as_slice(),
            b"secret bytes"
        );
        assert!(
            decode_private_key(b"-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----")
                .is_none()
        );
        assert!(decode_private_key(encode("EC PRIVATE KEY", b"x").as_bytes()).is_none());
    }
}
