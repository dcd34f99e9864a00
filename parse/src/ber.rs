//! BER to DER (X.690): streaming encoders (NSS, some S/MIME clients) write
//! CMS with indefinite lengths and segmented OCTET STRINGs, which DER
//! parsers refuse. Pure and bounded, so it is fuzzed
//! (`fuzz/fuzz_targets/ber.rs`).

/// BER nesting deeper than this is refused (CMS needs about ten).
pub const MAX_DEPTH: usize = 32;

/// The first BER element of `input` with DER lengths, and the octets it took.
pub fn to_der(input: &[u8]) -> Option<(Vec<u8>, usize)> {
    normalise(input, 0)
}

/// A BER identifier and length.
struct BerHeader {
    /// Octets of the identifier.
    tag_len: usize,
    /// Content length; `None` for the indefinite form.
    len: Option<usize>,
    /// Octets of identifier and length together.
    header_len: usize,
}

fn ber_header(input: &[u8]) -> Option<BerHeader> {
    let first = *input.first()?;
    let mut at = 1;
    if first & 0x1f == 0x1f {
        // High tag number: base-128 octets, the last without the top bit.
        loop {
            let b = *input.get(at)?;
            at += 1;
            if b & 0x80 == 0 {
                break;
            }
            if at > 5 {
                return None;
            }
        }
    }
    let tag_len = at;
    let l = *input.get(at)?;
    at += 1;
    let len = match l {
        0x00..=0x7f => Some(l as usize),
        0x80 => None,
        0x81..=0x84 => {
            let n = (l & 0x7f) as usize;
            let bytes = input.get(at..at + n)?;
            at += n;
            Some(bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize))
        }
        _ => return None,
    };
    Some(BerHeader {
        tag_len,
        len,
        header_len: at,
    })
}

/// `tag` + the DER length of `content` + `content`.
fn der_tlv(tag: &[u8], content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 6 + content.len());
    out.extend_from_slice(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The first BER element of `input` with DER lengths: indefinite lengths
/// become definite and constructed OCTET STRINGs primitive. Elements that
/// need no change keep their bytes. Returns it and the octets it took.
fn normalise(input: &[u8], depth: usize) -> Option<(Vec<u8>, usize)> {
    if depth > MAX_DEPTH {
        return None;
    }
    let h = ber_header(input)?;
    let constructed = input[0] & 0x20 != 0;
    if !constructed {
        let end = h.header_len.checked_add(h.len?)?;
        return Some((input.get(..end)?.to_vec(), end));
    }
    let limit = match h.len {
        Some(n) => {
            let end = h.header_len.checked_add(n)?;
            if end > input.len() {
                return None;
            }
            Some(end)
        }
        None => None,
    };
    let octets = input[0] == 0x24; // universal, constructed, OCTET STRING
    let mut content = Vec::new();
    let mut at = h.header_len;
    loop {
        match limit {
            Some(end) if at == end => break,
            None if input.get(at..at + 2)? == [0, 0] => {
                at += 2;
                break;
            }
            _ => {}
        }
        let end = limit.unwrap_or(input.len());
        let (child, used) = normalise(input.get(at..end)?, depth + 1)?;
        at += used;
        if octets {
            // Segments of a constructed OCTET STRING are OCTET STRINGs.
            if child.first() != Some(&0x04) {
                return None;
            }
            content.extend_from_slice(&child[ber_header(&child)?.header_len..]);
        } else {
            content.extend_from_slice(&child);
        }
    }
    if octets {
        return Some((der_tlv(&[0x04], &content), at));
    }
    if h.len.is_some() && content == input[h.header_len..at] {
        return Some((input[..at].to_vec(), at));
    }
    Some((der_tlv(&input[..h.tag_len], &content), at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_der_normaliser_keeps_der_and_fixes_ber() {
        // DER passes through unchanged (even a non-minimal length is kept).
        let der = [0x30, 0x81, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(to_der(&der).unwrap(), (der.to_vec(), 6));
        // Indefinite lengths become definite; a constructed OCTET STRING primitive.
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x01, b'a', 0x04, 0x02, b'b', b'c', 0x00, 0x00, 0x00,
            0x00, 0xff,
        ];
        let (out, used) = to_der(&ber).unwrap();
        assert_eq!(used, 15, "the trailing byte is not part of it");
        assert_eq!(out, [0x30, 0x05, 0x04, 0x03, b'a', b'b', b'c']);
        // Long content gets a long-form length.
        let long = der_tlv(&[0x04], &[7u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
