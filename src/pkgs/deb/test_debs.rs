//! Builders of `.deb` files for the tests: tar entries named exactly as given (hostile ones too), ar
//! archives and the compressions.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::ar::AR_MAGIC;

/// One tar entry of a fixture, named exactly as given (no normalisation, so hostile names can be made).
#[derive(Clone, Copy)]
pub(super) enum Node<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Char(&'a str),
    Block(&'a str),
    Fifo(&'a str),
    /// A name too long for the header, written with a GNU long-name entry.
    LongFile(&'a str, &'a [u8]),
}
use Node::*;

pub(super) fn tar(nodes: &[Node]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for node in nodes {
        let mut header = tar::Header::new_gnu();
        let (name, link, entry_type, data, mode): (&str, &str, EntryType, &[u8], u32) = match *node {
            Dir(name) => (name, "", EntryType::Directory, b"", 0o755),
            File(name, data, mode) => (name, "", EntryType::Regular, data, mode),
            Symlink(name, target) => (name, target, EntryType::Symlink, b"", 0o777),
            HardLink(name, target) => (name, target, EntryType::Link, b"", 0o644),
            Char(name) => (name, "", EntryType::Char, b"", 0o644),
            Block(name) => (name, "", EntryType::Block, b"", 0o644),
            Fifo(name) => (name, "", EntryType::Fifo, b"", 0o644),
            LongFile(name, data) => {
                header.set_entry_type(EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, name, data).unwrap();
                continue;
            }
        };
        assert!(name.len() < 100 && link.len() < 100, "fixture names fit the header");
        let old = header.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname = [0; 100];
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(entry_type);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

pub(super) fn compress(data: &[u8], compression: Compression) -> (Vec<u8>, &'static str) {
    match compression {
        Compression::None => (data.to_vec(), ""),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).unwrap();
            (encoder.finish().unwrap(), ".gz")
        }
        Compression::Xz => {
            let mut encoder = xz2::write::XzEncoder::new(Vec::new(), 6);
            encoder.write_all(data).unwrap();
            (encoder.finish().unwrap(), ".xz")
        }
        Compression::Zstd => (zstd::encode_all(data, 3).unwrap(), ".zst"),
    }
}

pub(super) fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = AR_MAGIC.to_vec();
    for (name, data) in members {
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            0,
            0,
            0,
            100644,
            data.len()
        );
        assert_eq!(header.len(), 60);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

pub(super) const CONTROL: &str = "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nDescription: greets\n";

pub(super) fn control_tar() -> Vec<u8> {
    tar(&[
        Dir("./"),
        File("./control", CONTROL.as_bytes(), 0o644),
        File("./postinst", b"#!/bin/sh\nset -e\necho configured\n", 0o755),
        File("./md5sums", b"0123  usr/bin/hello\n", 0o644),
    ])
}

pub(super) fn deb_bytes(data: &[Node], compression: Compression) -> Vec<u8> {
    let (control, control_suffix) = compress(&control_tar(), Compression::Gzip);
    let (data, data_suffix) = compress(&tar(data), compression);
    ar(&[
        ("debian-binary", b"2.0\n"),
        (&format!("control.tar{control_suffix}"), &control),
        (&format!("data.tar{data_suffix}"), &data),
    ])
}

pub(super) fn write_deb(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("fixture.deb");
    fs::write(&path, bytes).unwrap();
    path
}

pub(super) fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

pub(super) fn link(path: &Path) -> String {
    fs::read_link(path).unwrap().to_string_lossy().into_owned()
}

pub(super) fn hello_package() -> Vec<Node<'static>> {
    vec![
        Dir("./"),
        Dir("./bin/"),
        File("./bin/sh", b"#!sh", 0o755),
        Dir("./usr/"),
        Dir("./usr/bin/"),
        File("./usr/bin/hello", b"hello binary", 0o755),
        File("./usr/bin/owner-exec", b"x", 0o700),
        File("./usr/bin/setuid", b"s", 0o4755),
        HardLink("./usr/bin/hello-again", "./usr/bin/hello"),
        Symlink("./usr/bin/sh2", "/bin/sh"),
        Symlink("./usr/bin/hi", "hello"),
        Dir("./usr/lib/"),
        Dir("./usr/lib/x86_64-linux-gnu/"),
        File("./usr/lib/x86_64-linux-gnu/libfoo.so.1", b"ELF", 0o644),
        File("./usr/lib/x86_64-linux-gnu/private.so", b"ELF", 0o600),
        Symlink("./usr/lib/x86_64-linux-gnu/libfoo.so", "libfoo.so.1"),
        Symlink(
            "./usr/lib/x86_64-linux-gnu/libbar.so",
            "/lib/x86_64-linux-gnu/libfoo.so.1",
        ),
        Symlink(
            "./usr/lib/x86_64-linux-gnu/up.so",
            "../../../lib/x86_64-linux-gnu/libfoo.so.1",
        ),
        Dir("./lib/"),
        Dir("./lib/x86_64-linux-gnu/"),
        File("./lib/x86_64-linux-gnu/libc.so.6", b"libc", 0o755),
        Dir("./lib64/"),
        Symlink("./lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"),
        // Merged-usr packages ship the aliases; after the merge they point at themselves.
        Symlink("./sbin", "usr/sbin"),
        Dir("./usr/sbin/"),
        File("./usr/sbin/tool", b"t", 0o750),
        Symlink("./usr/sbin/tool", "/usr/sbin/tool"),
        Dir("./etc/"),
        Symlink("./etc/alt", "/etc/alternatives/hello"),
        // Files in both usr/X and X's directories merge into one real directory.
        Dir("./usr/share/doc/hello/"),
        File("./usr/share/doc/hello/copyright", b"GPL", 0o644),
        LongFile(
            "./usr/share/doc/hello/a-very-long-directory-name-that-does-not-fit/in-the-hundred-bytes-of-a-tar-header/README",
            b"long",
        ),
    ]
}
