//! The compact binary cache (`index.bin`): written as the index's own bytes, and read back with every
//! offset, enum and the sort order checked.

use std::io::{Read, Write};
use std::path::Path;

use super::error::{CacheError, CacheFormatError};
use super::{
    CODES, F_NAME, FIELDS, FORMAT_VERSION, HEADER_SIZE, Index, MAGIC, MultiArch, PROVIDE_SIZE, Priority, RECORD_SIZE,
    STR_SIZE, Str, put_str, str_at, u32_at, u64_at,
};

/// The header's counts, checked against each other and the file's length.
struct Header {
    sources: usize,
    packages: usize,
    provides: usize,
    strings: usize,
    /// Bytes of the sources, package and provides tables.
    tables_len: usize,
    arch: Str,
    checksum: u64,
}

/// A fast 64-bit checksum of the tables and string table, to catch a damaged file (not an adversary: the
/// cache is as trusted as the directory it is in). Four independent lanes over 8-byte words.
fn checksum(parts: &[&[u8]]) -> u64 {
    const K: [u64; 4] = [
        0x9e37_79b9_7f4a_7c15,
        0xc2b2_ae3d_27d4_eb4f,
        0x1656_67b1_9e37_79f9,
        0x85eb_ca77_c2b2_ae63,
    ];
    let mut lanes = K;
    let mut total = 0u64;
    for part in parts {
        total = total.wrapping_add(part.len() as u64);
        let mut chunks = part.chunks_exact(32);
        for chunk in &mut chunks {
            for (i, lane) in lanes.iter_mut().enumerate() {
                let word = u64_at(chunk, i * 8);
                *lane = (*lane ^ word).wrapping_mul(K[i]).rotate_left(29);
            }
        }
        for (i, &byte) in chunks.remainder().iter().enumerate() {
            let lane = &mut lanes[i % 4];
            *lane = (*lane ^ u64::from(byte)).wrapping_mul(K[i % 4]).rotate_left(29);
        }
    }
    lanes
        .iter()
        .fold(total, |h, &lane| (h ^ lane).wrapping_mul(K[0]).rotate_left(31))
}

impl Index {
    /// The cache file's header and tables (the string table follows them).
    fn cache_head(&self) -> Vec<u8> {
        let mut sources = Vec::with_capacity(self.sources.len() * STR_SIZE);
        for &s in &self.sources {
            put_str(&mut sources, s);
        }
        let strings = self.strings.as_bytes();
        let total = (HEADER_SIZE + sources.len() + self.tables.len() + strings.len()) as u64;
        let mut out = Vec::with_capacity(HEADER_SIZE + sources.len() + self.tables.len());
        out.extend_from_slice(MAGIC);
        for n in [
            FORMAT_VERSION,
            RECORD_SIZE as u32,
            self.sources.len() as u32,
            self.packages as u32,
            self.provides as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        put_str(&mut out, self.arch);
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(&checksum(&[&sources, &self.tables, strings]).to_le_bytes());
        out.resize(HEADER_SIZE, 0);
        out.extend_from_slice(&sources);
        out.extend_from_slice(&self.tables);
        out
    }

    /// The whole cache file.
    pub fn to_cache_bytes(&self) -> Vec<u8> {
        let mut out = self.cache_head();
        out.extend_from_slice(self.strings.as_bytes());
        out
    }

    /// Writes the cache to `path` atomically: a temporary file in the same directory, synced, then renamed
    /// over `path`.
    pub fn write_cache(&self, path: &Path) -> Result<(), CacheError> {
        let io = |source| CacheError::Io {
            action: "writing",
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut file = tempfile::Builder::new()
            .prefix(".rixos-index-")
            .tempfile_in(dir)
            .map_err(io)?;
        file.write_all(&self.cache_head()).map_err(io)?;
        file.write_all(self.strings.as_bytes()).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Reads a cache that [`Index::write_cache`] wrote, validating all of it. This is the fast way: the
    /// tables and the string table are read straight into the buffers the index keeps.
    pub fn read_cache(path: &Path) -> Result<Index, CacheError> {
        let io = |source| CacheError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        };
        let invalid = |error| CacheError::Invalid {
            path: path.to_path_buf(),
            error,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut head = vec![0u8; (file_len as usize).min(HEADER_SIZE)];
        file.read_exact(&mut head).map_err(io)?;
        let header = Index::check_header(&head, file_len).map_err(invalid)?;
        let mut read = |len: usize| -> Result<Vec<u8>, CacheError> {
            // Fresh zeroed memory costs nothing more than uninitialised memory: it comes zeroed from the OS.
            let mut buffer = vec![0u8; len];
            file.read_exact(&mut buffer).map_err(io)?;
            Ok(buffer)
        };
        let sources = read(header.sources * STR_SIZE)?;
        let tables = read(header.tables_len - sources.len())?;
        let strings = read(header.strings)?;
        Index::decode(&header, &sources, tables, strings).map_err(invalid)
    }

    /// Reads a cache from its bytes (which it copies; [`Index::read_cache`] does not need to).
    pub fn from_cache_bytes(bytes: &[u8]) -> Result<Index, CacheFormatError> {
        let header = Index::check_header(&bytes[..bytes.len().min(HEADER_SIZE)], bytes.len() as u64)?;
        let (sources, rest) = bytes[HEADER_SIZE..].split_at(header.sources * STR_SIZE);
        let (tables, strings) = rest.split_at(header.tables_len - sources.len());
        Index::decode(&header, sources, tables.to_vec(), strings.to_vec())
    }

    /// Checks the header (`head`: the file's first bytes, at most [`HEADER_SIZE`]) against the file's length.
    fn check_header(head: &[u8], file_len: u64) -> Result<Header, CacheFormatError> {
        let corrupt = |reason: String| Err(CacheFormatError::Corrupt(reason));
        if head.len() < HEADER_SIZE {
            // A prefix of the magic is a truncated cache; anything else is some other file.
            if head.is_empty() || !MAGIC.starts_with(&head[..head.len().min(MAGIC.len())]) {
                return Err(CacheFormatError::NotACache);
            }
            return corrupt(format!("truncated: {file_len} bytes, shorter than the header"));
        }
        if &head[..8] != MAGIC {
            return Err(CacheFormatError::NotACache);
        }
        let version = u32_at(head, 8);
        if version != FORMAT_VERSION {
            return Err(CacheFormatError::FormatVersion {
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let record_size = u32_at(head, 12);
        if record_size as usize != RECORD_SIZE {
            return corrupt(format!("record size {record_size}, expected {RECORD_SIZE}"));
        }
        let count = |at: usize| u32_at(head, at) as usize;
        let (sources, packages, provides, strings) = (count(16), count(20), count(24), count(28));
        let arch = str_at(head, 32);
        let total = u64_at(head, 40);
        let checksum = u64_at(head, 48);
        // At most 2^32 of each of 8-, 104- and 20-byte entries: no overflow in 64 bits.
        let tables_len = sources * STR_SIZE + packages * RECORD_SIZE + provides * PROVIDE_SIZE;
        if (HEADER_SIZE + tables_len + strings) as u64 != total {
            return corrupt(format!("the header's length {total} does not match its counts"));
        }
        if total != file_len {
            return corrupt(format!(
                "the header says {total} bytes, the file has {file_len} (truncated or appended to)"
            ));
        }
        Ok(Header {
            sources,
            packages,
            provides,
            strings,
            tables_len,
            arch,
            checksum,
        })
    }

    fn decode(header: &Header, sources: &[u8], tables: Vec<u8>, strings: Vec<u8>) -> Result<Index, CacheFormatError> {
        Index::decode_checked(header, sources, tables, strings).map_err(CacheFormatError::Corrupt)
    }

    /// Builds the index from the tables and string table, checking every offset, code and the sort order.
    fn decode_checked(header: &Header, sources: &[u8], tables: Vec<u8>, strings: Vec<u8>) -> Result<Index, String> {
        if checksum(&[sources, &tables, &strings]) != header.checksum {
            return Err("checksum mismatch".to_string());
        }
        let strings = String::from_utf8(strings)
            .map_err(|e| format!("string table is not UTF-8 at byte {}", e.utf8_error().valid_up_to()))?;
        let outside = |what: &str, i: usize, start: usize, len: usize| {
            format!(
                "{what} {i}: string at {start}+{len} is not within the {}-byte string table",
                strings.len()
            )
        };
        let check = |s: Str, what: &str, i: usize| -> Result<Str, String> {
            let (start, end) = (s.off as usize, s.off as usize + s.len as usize);
            if end > strings.len() || !strings.is_char_boundary(start) || !strings.is_char_boundary(end) {
                return Err(outside(what, i, start, s.len as usize));
            }
            Ok(s)
        };
        let arch = check(header.arch, "architecture", 0)?;
        let sources = (0..header.sources)
            .map(|i| check(str_at(sources, i * STR_SIZE), "source", i))
            .collect::<Result<Vec<Str>, String>>()?;
        // Lookups are binary searches: the order must hold.
        let mut previous_name: &[u8] = &[];
        for (i, record) in tables[..header.packages * RECORD_SIZE]
            .chunks_exact(RECORD_SIZE)
            .enumerate()
        {
            let mut at = u32_at(record, 0) as usize;
            if !strings.is_char_boundary(at) {
                return Err(outside("package", i, at, 0));
            }
            let name_start = at;
            for field in 0..FIELDS {
                let len = u32_at(record, 4 + 4 * field) as usize;
                if !strings.is_char_boundary(at + len) {
                    return Err(outside("package", i, at, len));
                }
                at += len;
            }
            let name = &strings.as_bytes()[name_start..name_start + u32_at(record, 4 + 4 * F_NAME) as usize];
            if name.is_empty() {
                return Err(format!("package {i} has no name"));
            }
            if name < previous_name {
                return Err(format!("packages {} and {i} are out of order", i - 1));
            }
            previous_name = name;
            let (priority, multi_arch, essential) = (record[CODES], record[CODES + 1], record[CODES + 2]);
            if usize::from(priority) > Priority::ALL.len()
                || usize::from(multi_arch) >= MultiArch::ALL.len()
                || essential > 1
                || record[CODES + 3..CODES + 8] != [0; 5]
            {
                return Err(format!(
                    "package {i}: bad codes (priority {priority}, Multi-Arch {multi_arch}, Essential {essential})"
                ));
            }
        }
        for i in 0..header.provides {
            let at = header.packages * RECORD_SIZE + i * PROVIDE_SIZE;
            check(str_at(&tables, at), "provides entry", i)?;
            check(str_at(&tables, at + STR_SIZE), "provides entry", i)?;
            let provider = u32_at(&tables, at + 2 * STR_SIZE);
            if provider as usize >= header.packages {
                return Err(format!("provides entry {i}: package {provider} of {}", header.packages));
            }
        }
        let index = Index {
            arch,
            sources,
            tables,
            packages: header.packages,
            provides: header.provides,
            strings,
        };
        if let Some(i) =
            (1..index.provides).find(|&i| index.str(index.provide(i - 1).0) > index.str(index.provide(i).0))
        {
            return Err(format!("provides entries {} and {i} are out of order", i - 1));
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkgs::index::test_packages::{archive, assert_same};
    use crate::pkgs::index::{F_DESCRIPTION, IndexBuilder};

    #[test]
    fn cache_round_trip() {
        let index = archive();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.cache");
        index.write_cache(&path).unwrap();
        let read = Index::read_cache(&path).unwrap();
        assert_same(&index, &read);
        // Only the cache is left in the directory: the temporary file was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Writing again replaces it.
        read.write_cache(&path).unwrap();
        assert_same(&index, &Index::read_cache(&path).unwrap());
        let empty = IndexBuilder::new("arm64").finish();
        empty.write_cache(&path).unwrap();
        let read = Index::read_cache(&path).unwrap();
        assert!(read.is_empty());
        assert_eq!(read.arch(), "arm64");
    }

    #[test]
    fn bad_caches_are_errors() {
        let index = archive();
        let good = index.to_cache_bytes();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.cache");
        let try_read = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            Index::read_cache(&path).map(|_| ()).unwrap_err().to_string()
        };
        let patched = |offset: usize, value: &[u8]| {
            let mut bytes = good.clone();
            bytes[offset..offset + value.len()].copy_from_slice(value);
            bytes
        };
        // The string table starts after the header and tables; pointing a name past it must be caught even
        // with a matching checksum.
        let sources_len = index.sources.len() * STR_SIZE;
        let tables_len = index.tables.len();
        let with_checksum = |mut bytes: Vec<u8>| {
            let (sources, rest) = bytes[HEADER_SIZE..].split_at(sources_len);
            let (tables, strings) = rest.split_at(tables_len);
            let sum = checksum(&[sources, tables, strings]);
            bytes[48..56].copy_from_slice(&sum.to_le_bytes());
            bytes
        };
        let first_record = HEADER_SIZE + STR_SIZE;
        let mut unsorted = good.clone();
        // Swap the first two records.
        let (a, b) = (first_record, first_record + RECORD_SIZE);
        let record_a: Vec<u8> = unsorted[a..b].to_vec();
        let record_b: Vec<u8> = unsorted[b..b + RECORD_SIZE].to_vec();
        unsorted[a..b].copy_from_slice(&record_b);
        unsorted[b..b + RECORD_SIZE].copy_from_slice(&record_a);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "not a rixos package index cache (bad magic)"),
            (b"hello".to_vec(), "not a rixos package index cache (bad magic)"),
            (b"RIXOS".to_vec(), "corrupt: truncated: 5 bytes"),
            (patched(0, b"XIXOSIDX"), "not a rixos package index cache (bad magic)"),
            (
                patched(8, &2u32.to_le_bytes()),
                "format version 2, this rixos reads version 1",
            ),
            (patched(12, &7u32.to_le_bytes()), "record size 7"),
            (good[..good.len() - 1].to_vec(), "the file has"),
            ([good.as_slice(), b"x"].concat(), "truncated or appended to"),
            (patched(20, &1000u32.to_le_bytes()), "does not match its counts"),
            (patched(good.len() - 3, b"Z"), "checksum mismatch"),
            (
                with_checksum(patched(first_record, &u32::MAX.to_le_bytes())),
                "package 0: string at 4294967295+0",
            ),
            (
                with_checksum(patched(first_record + 4 + 4 * F_DESCRIPTION, &u32::MAX.to_le_bytes())),
                "package 0: string at ",
            ),
            (
                with_checksum(patched(first_record + 4, &[0; 4])),
                "package 0 has no name",
            ),
            (
                with_checksum(patched(first_record + CODES + 1, &[9])),
                "package 0: bad codes (priority 0, Multi-Arch 9",
            ),
            (
                with_checksum(patched(first_record + CODES + 3, &[1])),
                "package 0: bad codes",
            ),
            (
                with_checksum(patched(32, &u32::MAX.to_le_bytes())),
                "architecture 0: string at 4294967295",
            ),
            (
                with_checksum(patched(
                    first_record + index.len() * RECORD_SIZE + 16,
                    &u32::MAX.to_le_bytes(),
                )),
                "provides entry 0: package 4294967295 of 18",
            ),
            (with_checksum(unsorted), "packages 0 and 1 are out of order"),
        ];
        for (bytes, message) in cases {
            let err = try_read(&bytes);
            assert!(err.contains(message), "{err:?} lacks {message:?}");
            assert!(err.contains("delete it to rebuild it"), "{err}");
        }
        assert_same(&index, &Index::from_cache_bytes(&good).unwrap());
        assert_eq!(
            Index::from_cache_bytes(b"RIX").unwrap_err(),
            CacheFormatError::Corrupt("truncated: 3 bytes, shorter than the header".to_string())
        );
        assert!(
            Index::read_cache(&dir.path().join("missing"))
                .unwrap_err()
                .to_string()
                .starts_with("reading index cache")
        );
    }
}
