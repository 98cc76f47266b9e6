//! A minimal hand-written binding to squashfs-tools-ng's libsquashfs 1.2 (Debian: libsquashfs-dev), the
//! calls [`super::squashfs`] needs to write an image. Declared as in `/usr/include/sqfs/*.h`.
//!
//! Why not the `squashfs-ng` crate: its writer fixes the block size at 128 KiB, the compression level at the
//! library default and the superblock time at "now" (so no reproducible image), and it keeps its raw
//! bindings private; generating them needs bindgen and libclang at build time.

#![allow(non_camel_case_types, dead_code)]

use std::os::raw::{c_char, c_int, c_uint, c_void};

pub const SQFS_COMP_ZSTD: c_int = 6;
pub const SQFS_FILE_OPEN_OVERWRITE: u32 = 0x02;
pub const SQFS_DIR_WRITER_CREATE_EXPORT_TABLE: u32 = 0x01;
pub const SQFS_META_WRITER_KEEP_IN_MEMORY: u32 = 0x01;
pub const SQFS_FLAG_EXPORTABLE: u16 = 0x0080;
pub const SQFS_FLAG_NO_XATTRS: u16 = 0x0200;
pub const SQFS_FLAG_COMPRESSOR_OPTIONS: u16 = 0x0400;
pub const SQFS_INODE_SLINK: u16 = 3;
pub const SQFS_DEVBLK_SIZE: usize = 4096;
pub const SQFS_MAX_BLOCK_SIZE: u32 = 1 << 20;
pub const SQFS_ZSTD_MAX_LEVEL: u32 = 22;

/// `sqfs_object_t`: every object starts with these; `sqfs_destroy` calls `destroy`.
#[repr(C)]
pub struct sqfs_object_t {
    pub destroy: Option<unsafe extern "C" fn(*mut sqfs_object_t)>,
    pub copy: Option<unsafe extern "C" fn(*const sqfs_object_t) -> *mut sqfs_object_t>,
}

#[repr(C)]
pub struct sqfs_file_t {
    pub base: sqfs_object_t,
    pub read_at: Option<unsafe extern "C" fn(*mut sqfs_file_t, u64, *mut c_void, usize) -> c_int>,
    pub write_at: Option<unsafe extern "C" fn(*mut sqfs_file_t, u64, *const c_void, usize) -> c_int>,
    pub get_size: Option<unsafe extern "C" fn(*const sqfs_file_t) -> u64>,
    pub truncate: Option<unsafe extern "C" fn(*mut sqfs_file_t, u64) -> c_int>,
}

#[repr(C)]
pub struct sqfs_compressor_t {
    pub base: sqfs_object_t,
    pub get_configuration: Option<unsafe extern "C" fn(*const sqfs_compressor_t, *mut sqfs_compressor_config_t)>,
    pub write_options: Option<unsafe extern "C" fn(*mut sqfs_compressor_t, *mut sqfs_file_t) -> c_int>,
    pub read_options: Option<unsafe extern "C" fn(*mut sqfs_compressor_t, *mut sqfs_file_t) -> c_int>,
    pub do_block: Option<unsafe extern "C" fn(*mut sqfs_compressor_t, *const u8, u32, *mut u8, u32) -> i32>,
}

#[repr(C)]
pub struct sqfs_compressor_config_t {
    pub id: u16,
    pub flags: u16,
    pub block_size: u32,
    pub level: u32,
    /// The per-compressor union (`opt`); zstd has no options there.
    pub opt: [u64; 2],
}

#[repr(C)]
#[derive(Default)]
pub struct sqfs_super_t {
    pub magic: u32,
    pub inode_count: u32,
    pub modification_time: u32,
    pub block_size: u32,
    pub fragment_entry_count: u32,
    pub compression_id: u16,
    pub block_log: u16,
    pub flags: u16,
    pub id_count: u16,
    pub version_major: u16,
    pub version_minor: u16,
    pub root_inode_ref: u64,
    pub bytes_used: u64,
    pub id_table_start: u64,
    pub xattr_id_table_start: u64,
    pub inode_table_start: u64,
    pub directory_table_start: u64,
    pub fragment_table_start: u64,
    pub export_table_start: u64,
}

#[repr(C)]
pub struct sqfs_inode_t {
    pub type_: u16,
    pub mode: u16,
    pub uid_idx: u16,
    pub gid_idx: u16,
    pub mod_time: u32,
    pub inode_number: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct sqfs_inode_slink_t {
    pub nlink: u32,
    pub target_size: u32,
}

/// `sqfs_inode_generic_t`: the union `data` is 40 bytes (its largest member, `sqfs_inode_file_ext_t`) with
/// 8-byte alignment; `extra` (block sizes, a link's target) follows it.
#[repr(C)]
pub struct sqfs_inode_generic_t {
    pub base: sqfs_inode_t,
    pub payload_bytes_available: u32,
    pub payload_bytes_used: u32,
    pub data: sqfs_inode_data,
    pub extra: [u32; 0],
}

#[repr(C)]
pub union sqfs_inode_data {
    pub slink: sqfs_inode_slink_t,
    pub raw: [u64; 5],
}

#[repr(C)]
pub struct sqfs_block_processor_stats_t {
    pub size: usize,
    pub input_bytes_read: u64,
    pub output_bytes_generated: u64,
    pub data_block_count: u64,
    pub frag_block_count: u64,
    pub sparse_block_count: u64,
    pub total_frag_count: u64,
    pub actual_frag_count: u64,
}

macro_rules! opaque {
    ($($name:ident),*) => { $( #[repr(C)] pub struct $name { _private: [u8; 0] } )* };
}
opaque!(
    sqfs_block_processor_t,
    sqfs_block_writer_t,
    sqfs_frag_table_t,
    sqfs_id_table_t,
    sqfs_meta_writer_t,
    sqfs_dir_writer_t
);

#[link(name = "squashfs")]
unsafe extern "C" {
    pub fn sqfs_open_file(filename: *const c_char, flags: u32) -> *mut sqfs_file_t;
    pub fn sqfs_compressor_config_init(
        cfg: *mut sqfs_compressor_config_t,
        id: c_int,
        block_size: usize,
        flags: u16,
    ) -> c_int;
    pub fn sqfs_compressor_create(cfg: *const sqfs_compressor_config_t, out: *mut *mut sqfs_compressor_t) -> c_int;
    pub fn sqfs_super_init(sb: *mut sqfs_super_t, block_size: usize, mtime: u32, compressor: c_int) -> c_int;
    pub fn sqfs_super_write(sb: *const sqfs_super_t, file: *mut sqfs_file_t) -> c_int;

    pub fn sqfs_frag_table_create(flags: u32) -> *mut sqfs_frag_table_t;
    pub fn sqfs_frag_table_write(
        tbl: *mut sqfs_frag_table_t,
        file: *mut sqfs_file_t,
        sb: *mut sqfs_super_t,
        cmp: *mut sqfs_compressor_t,
    ) -> c_int;
    pub fn sqfs_block_writer_create(file: *mut sqfs_file_t, devblksz: usize, flags: u32) -> *mut sqfs_block_writer_t;
    pub fn sqfs_block_processor_create(
        max_block_size: usize,
        cmp: *mut sqfs_compressor_t,
        num_workers: c_uint,
        max_backlog: usize,
        wr: *mut sqfs_block_writer_t,
        tbl: *mut sqfs_frag_table_t,
    ) -> *mut sqfs_block_processor_t;
    pub fn sqfs_block_processor_begin_file(
        proc_: *mut sqfs_block_processor_t,
        inode: *mut *mut sqfs_inode_generic_t,
        user: *mut c_void,
        flags: u32,
    ) -> c_int;
    pub fn sqfs_block_processor_append(proc_: *mut sqfs_block_processor_t, data: *const c_void, size: usize) -> c_int;
    pub fn sqfs_block_processor_end_file(proc_: *mut sqfs_block_processor_t) -> c_int;
    pub fn sqfs_block_processor_finish(proc_: *mut sqfs_block_processor_t) -> c_int;
    pub fn sqfs_block_processor_get_stats(proc_: *const sqfs_block_processor_t) -> *const sqfs_block_processor_stats_t;

    pub fn sqfs_id_table_create(flags: u32) -> *mut sqfs_id_table_t;
    pub fn sqfs_id_table_id_to_index(tbl: *mut sqfs_id_table_t, id: u32, out: *mut u16) -> c_int;
    pub fn sqfs_id_table_write(
        tbl: *mut sqfs_id_table_t,
        file: *mut sqfs_file_t,
        sb: *mut sqfs_super_t,
        cmp: *mut sqfs_compressor_t,
    ) -> c_int;

    pub fn sqfs_meta_writer_create(
        file: *mut sqfs_file_t,
        cmp: *mut sqfs_compressor_t,
        flags: u32,
    ) -> *mut sqfs_meta_writer_t;
    pub fn sqfs_meta_writer_flush(m: *mut sqfs_meta_writer_t) -> c_int;
    pub fn sqfs_meta_writer_get_position(m: *const sqfs_meta_writer_t, block_start: *mut u64, offset: *mut u32);
    pub fn sqfs_meta_write_write_to_file(m: *mut sqfs_meta_writer_t) -> c_int;
    pub fn sqfs_meta_writer_write_inode(iw: *mut sqfs_meta_writer_t, n: *const sqfs_inode_generic_t) -> c_int;

    pub fn sqfs_dir_writer_create(dm: *mut sqfs_meta_writer_t, flags: u32) -> *mut sqfs_dir_writer_t;
    pub fn sqfs_dir_writer_begin(writer: *mut sqfs_dir_writer_t, flags: u32) -> c_int;
    pub fn sqfs_dir_writer_add_entry(
        writer: *mut sqfs_dir_writer_t,
        name: *const c_char,
        inode_num: u32,
        inode_ref: u64,
        mode: u16,
    ) -> c_int;
    pub fn sqfs_dir_writer_end(writer: *mut sqfs_dir_writer_t) -> c_int;
    pub fn sqfs_dir_writer_create_inode(
        writer: *const sqfs_dir_writer_t,
        hlinks: usize,
        xattr: u32,
        parent_ino: u32,
    ) -> *mut sqfs_inode_generic_t;
    pub fn sqfs_dir_writer_write_export_table(
        writer: *mut sqfs_dir_writer_t,
        file: *mut sqfs_file_t,
        cmp: *mut sqfs_compressor_t,
        root_inode_num: u32,
        root_inode_ref: u64,
        sb: *mut sqfs_super_t,
    ) -> c_int;

    pub fn sqfs_free(ptr: *mut c_void);
}

/// `sqfs_destroy`, a static inline in predef.h: call the object's own destructor.
///
/// # Safety
/// `obj` is null or a live libsquashfs object, not used afterwards.
pub unsafe fn sqfs_destroy<T>(obj: *mut T) {
    let obj = obj.cast::<sqfs_object_t>();
    if !obj.is_null() {
        // SAFETY: every libsquashfs object starts with an sqfs_object_t (predef.h).
        unsafe {
            if let Some(destroy) = (*obj).destroy {
                destroy(obj);
            }
        }
    }
}

/// The `SQFS_ERROR` names for error messages.
pub fn error_name(code: c_int) -> &'static str {
    match code {
        -1 => "out of memory",
        -2 => "I/O error",
        -3 => "compressor error",
        -4 => "internal error",
        -5 => "corrupted",
        -6 => "unsupported",
        -7 => "overflow",
        -8 => "out of bounds",
        -16 => "invalid argument",
        -17 => "calls out of sequence",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_headers() {
        // sizeof as libsquashfs 1.2 compiles them on x86_64.
        assert_eq!(size_of::<sqfs_super_t>(), 96);
        assert_eq!(size_of::<sqfs_compressor_config_t>(), 28 + 4);
        assert_eq!(std::mem::offset_of!(sqfs_inode_generic_t, data), 24);
        assert_eq!(size_of::<sqfs_inode_generic_t>(), 64);
        assert_eq!(size_of::<sqfs_block_processor_stats_t>(), 64);
    }
}
