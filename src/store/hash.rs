//! Hashes as Nix writes them: Nix32 ("base32", its own alphabet and bit order), hex, and the XOR fold that
//! turns a sha256 into the 20 bytes of a store path's hash part.

use sha2::{Digest, Sha256};
use thiserror::Error;

const NIX32_ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HashError {
    #[error("{text:?} is not Nix32: character {character:?} is not in 0-9a-z without e, o, u, t")]
    BadNix32Character { text: String, character: char },
    #[error("{text:?} is not Nix32 for {bytes} bytes (expected {expected} characters)")]
    BadNix32Length {
        text: String,
        bytes: usize,
        expected: usize,
    },
    #[error("{text:?} is not Nix32: it encodes more bits than {bytes} bytes hold")]
    Nix32Overflow { text: String, bytes: usize },
}

/// The length of the Nix32 text for `bytes` bytes.
pub fn nix32_len(bytes: usize) -> usize {
    if bytes == 0 { 0 } else { (bytes * 8 - 1) / 5 + 1 }
}

/// Encodes bytes as Nix32: the last character holds the lowest five bits of the little-endian bit stream.
pub fn nix32_encode(bytes: &[u8]) -> String {
    let len = nix32_len(bytes.len());
    let mut out = String::with_capacity(len);
    for k in (0..len).rev() {
        let bit = k * 5;
        let (i, j) = (bit / 8, bit % 8);
        let low = bytes[i] >> j;
        let high = if j > 3 {
            bytes.get(i + 1).map_or(0, |b| b << (8 - j))
        } else {
            0
        };
        out.push(NIX32_ALPHABET[((low | high) & 31) as usize] as char);
    }
    out
}

/// Decodes Nix32 text into `bytes` bytes.
pub fn nix32_decode(text: &str, bytes: usize) -> Result<Vec<u8>, HashError> {
    let expected = nix32_len(bytes);
    if text.len() != expected {
        return Err(HashError::BadNix32Length {
            text: text.to_string(),
            bytes,
            expected,
        });
    }
    let mut out = vec![0u8; bytes];
    for (position, character) in text.chars().rev().enumerate() {
        let digit = NIX32_ALPHABET
            .iter()
            .position(|&c| c as char == character)
            .ok_or_else(|| HashError::BadNix32Character {
                text: text.to_string(),
                character,
            })? as u16;
        let bit = position * 5;
        let (i, j) = (bit / 8, bit % 8);
        let shifted = digit << j;
        out[i] |= shifted as u8;
        let carry = (shifted >> 8) as u8;
        if carry != 0 {
            match out.get_mut(i + 1) {
                Some(next) => *next |= carry,
                None => {
                    return Err(HashError::Nix32Overflow {
                        text: text.to_string(),
                        bytes,
                    });
                }
            }
        }
    }
    Ok(out)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Folds a digest into `size` bytes by XOR, as Nix does for store path hash parts (`size` = 20).
pub fn compress_hash(digest: &[u8], size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size];
    for (i, byte) in digest.iter().enumerate() {
        out[i % size] ^= byte;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix32_lengths_follow_the_formula() {
        assert_eq!(nix32_len(20), 32);
        assert_eq!(nix32_len(32), 52);
        assert_eq!(nix32_len(64), 103);
    }

    #[test]
    fn nix32_of_the_sha256_of_hello_matches_nix() {
        // `nix-hash --type sha256 --flat --base32` of a file holding "hello" (no newline), checked with Nix 2.8.
        let digest = sha256(b"hello");
        assert_eq!(
            hex(&digest),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            nix32_encode(&digest),
            "094qif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic"
        );
    }

    #[test]
    fn nix32_round_trips_every_length() {
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = nix32_encode(&bytes);
            assert_eq!(nix32_decode(&text, len).unwrap(), bytes, "length {len}");
        }
    }

    #[test]
    fn nix32_refuses_bad_text() {
        assert!(matches!(nix32_decode("e", 0), Err(HashError::BadNix32Length { .. })));
        let with_e = format!("e{}", "0".repeat(51));
        assert!(matches!(
            nix32_decode(&with_e, 32),
            Err(HashError::BadNix32Character { character: 'e', .. })
        ));
        // 52 characters carry 260 bits; the top four must be zero for 32 bytes.
        let too_big = format!("z{}", "0".repeat(51));
        assert!(matches!(
            nix32_decode(&too_big, 32),
            Err(HashError::Nix32Overflow { .. })
        ));
    }
}
