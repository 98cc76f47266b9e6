//! Hashes: `hashString`, `hashFile`, `convertHash`, and Nix's notations of a hash (hex, nix32, base64, SRI).

use std::path::Path;

use crate::eval::error::{ErrorKind, EvalError, Pos, Result, eval_error};
use crate::eval::eval::Evaluator;
use crate::eval::value::{Thunk, Value};

use super::{force_attrs, force_path, force_str};

pub fn hash_bytes(algo: &str, data: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    Some(match algo {
        "md5" => md5::Md5::digest(data).to_vec(),
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

pub(super) fn prim_hash_string(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let algo = force_str(ev, &a[0], pos)?;
    let s = force_str(ev, &a[1], pos)?;
    match hash_bytes(&algo.s, s.s.as_bytes()) {
        Some(h) => Ok(Value::str(crate::store::hash::hex(&h))),
        None => eval_error(
            format!(
                "unknown hash algorithm '{}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'",
                algo.s
            ),
            pos,
        ),
    }
}

pub(super) fn prim_hash_file(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let algo = force_str(ev, &a[0], pos)?;
    let (path, _) = force_path(ev, &a[1], pos)?;
    let data = ev
        .io
        .read_file(Path::new(&path))
        .map_err(|e| EvalError::new(ErrorKind::Eval, format!("opening file '{path}': {e}"), pos))?;
    match hash_bytes(&algo.s, &data) {
        Some(h) => Ok(Value::str(crate::store::hash::hex(&h))),
        None => eval_error(format!("unknown hash algorithm '{}'", algo.s), pos),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn hash_len(algo: &str) -> Option<usize> {
    Some(match algo {
        "md5" => 16,
        "sha1" => 20,
        "sha256" => 32,
        "sha512" => 64,
        _ => return None,
    })
}

/// Parses a hash in any of Nix's notations (hex, nix32, base64, SRI); `algo` may be empty only for SRI.
pub fn parse_hash(text: &str, algo: Option<&str>) -> std::result::Result<(String, Vec<u8>), String> {
    let (algo, body, sri) = match text.split_once('-') {
        Some((a, b)) if hash_len(a).is_some() => {
            if let Some(given) = algo
                && given != a
            {
                return Err(format!("hash '{text}' should have type '{given}'"));
            }
            (a.to_string(), b, true)
        }
        _ => match text.split_once(':') {
            Some((a, b)) if hash_len(a).is_some() => (a.to_string(), b, false),
            _ => match algo {
                Some(a) => (a.to_string(), text, false),
                None => {
                    return Err(format!(
                        "hash '{text}' does not include a type, nor is the type otherwise known from context"
                    ));
                }
            },
        },
    };
    let len = hash_len(&algo).ok_or_else(|| format!("unknown hash algorithm '{algo}'"))?;
    let bytes = if sri {
        base64_decode(body).filter(|b| b.len() == len)
    } else if body.len() == len * 2 {
        (0..len)
            .map(|i| u8::from_str_radix(&body[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()
    } else if body.len() == crate::store::hash::nix32_len(len) {
        crate::store::hash::nix32_decode(body, len).ok()
    } else if body.len() == len.div_ceil(3) * 4 {
        base64_decode(body).filter(|b| b.len() == len)
    } else {
        None
    };
    bytes
        .map(|b| (algo.clone(), b))
        .ok_or_else(|| format!("invalid {} hash '{text}'", if sri { "SRI" } else { algo.as_str() }))
}

pub(super) fn prim_convert_hash(ev: &mut Evaluator, a: &[Thunk], pos: Pos) -> Result<Value> {
    let args = force_attrs(ev, &a[0], pos)?;
    let get = |ev: &mut Evaluator, name: &str| -> Result<Option<String>> {
        match args.get_str(name) {
            Some(t) => {
                let t = t.clone();
                Ok(Some(force_str(ev, &t, pos)?.s.clone()))
            }
            None => Ok(None),
        }
    };
    let hash = get(ev, "hash")?.ok_or_else(|| EvalError::new(ErrorKind::Eval, "attribute 'hash' missing", pos))?;
    let algo = get(ev, "hashAlgo")?;
    let format = get(ev, "toHashFormat")?
        .ok_or_else(|| EvalError::new(ErrorKind::Eval, "attribute 'toHashFormat' missing", pos))?;
    let (algo, bytes) = parse_hash(&hash, algo.as_deref()).map_err(|m| EvalError::new(ErrorKind::Eval, m, pos))?;
    Ok(Value::str(
        format_hash(&algo, &bytes, &format).map_err(|m| EvalError::new(ErrorKind::Eval, m, pos))?,
    ))
}

pub fn format_hash(algo: &str, bytes: &[u8], format: &str) -> std::result::Result<String, String> {
    Ok(match format {
        "base16" => crate::store::hash::hex(bytes),
        "nix32" | "base32" => crate::store::hash::nix32_encode(bytes),
        "base64" => base64_encode(bytes),
        "sri" => format!("{algo}-{}", base64_encode(bytes)),
        other => {
            return Err(format!(
                "unknown hash format '{other}', expect 'base16', 'base32', 'base64', or 'sri'"
            ));
        }
    })
}
