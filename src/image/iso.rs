//! The live ISO: ISO 9660 with Rock Ridge and Joliet, written in-process by libisoburn's xorriso (through the
//! in-tree `xorriso-sys`), in the layout grub-mkrescue and NixOS use, so one file boots four ways:
//!
//! - BIOS from CD: El Torito entry 1, GRUB's `i386-pc-eltorito` image, no emulation, with the boot info table
//!   and GRUB's own boot info patched in (`-boot-info-table --grub2-boot-info`).
//! - BIOS from USB: GRUB's `boot_hybrid.img` as the MBR's code (`--grub2-mbr`), which loads that same image.
//! - UEFI from CD: El Torito entry 2, the FAT ESP image.
//! - UEFI from USB: the ESP image appended after the ISO as partition 2 of a GPT (`-append_partition 2 0xef
//!   ... -appended_part_as_gpt`); the El Torito entry points at that partition, so it is stored once.
//!
//! Reproducible: every file and volume timestamp, the El Torito catalog's and the GRUB volume UUID come from
//! the caller's epoch; the GPT disk GUID (and the partition GUIDs xorriso derives from it) from a hash of the
//! layout; modes and owners are rationalised (`-r`), entries sorted, no padding of host-dependent size.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// One file of the ISO: `path` inside it (`/`-separated, e.g. `boot/bzImage`) and the host file it copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoFile {
    pub path: String,
    pub source: PathBuf,
}

/// BIOS boot through GRUB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosBoot {
    /// Path inside the ISO of GRUB's El Torito image (`grub-mkimage -O i386-pc-eltorito`); must be one of the
    /// layout's files.
    pub eltorito_image: String,
    /// GRUB's `boot_hybrid.img` (from grub-pc-bin's `i386-pc` directory), the MBR code for USB boot.
    pub hybrid_mbr: PathBuf,
}

/// What [`build_iso`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoLayout {
    /// The image to write, `<name>.iso`; `<name>.iso.sha256` is written beside it.
    pub output: PathBuf,
    /// The ISO 9660 volume id, what `LABEL=` and GRUB's `search --label` find: 1 to 32 of `A-Z a-z 0-9 _ . -`.
    pub volume_label: String,
    pub files: Vec<IsoFile>,
    pub bios: Option<BiosBoot>,
    /// The FAT image of the EFI system partition (see [`super::esp`]), for UEFI boot.
    pub efi_image: Option<PathBuf>,
    /// Seconds since the Unix epoch for every timestamp (`SOURCE_DATE_EPOCH`).
    pub epoch: u64,
}

/// The image [`build_iso`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoImage {
    pub path: PathBuf,
    pub checksum_path: PathBuf,
    /// SHA-256 of the image, lower-case hex.
    pub sha256: String,
    pub size: u64,
}

/// ISO 9660 allows 32 characters in the volume id.
pub const MAX_VOLUME_LABEL: usize = 32;

/// Writes `layout.output` (replacing it) and its `.sha256` file.
pub fn build_iso(layout: &IsoLayout) -> Result<IsoImage> {
    let name = layout
        .output
        .file_name()
        .and_then(OsStr::to_str)
        .with_context(|| format!("{}: the output needs a file name", layout.output.display()))?
        .to_string();
    let files = checked_files(layout)?;
    let tmp = layout
        .output
        .with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    // An existing file at xorriso's output would be taken as a medium to append a session to.
    let _ = fs::remove_file(&tmp);
    let args = xorriso_args(layout, &files, &tmp)?;
    if let Err(err) = run_xorriso(&args) {
        let _ = fs::remove_file(&tmp);
        return Err(err.context(format!("writing ISO image {}", layout.output.display())));
    }
    fs::rename(&tmp, &layout.output)
        .with_context(|| format!("renaming {} to {}", tmp.display(), layout.output.display()))?;

    let (sha256, size) = sha256_file(&layout.output)?;
    let checksum_path = layout.output.with_file_name(format!("{name}.sha256"));
    let mut checksum = File::create(&checksum_path).with_context(|| format!("creating {}", checksum_path.display()))?;
    writeln!(checksum, "{sha256}  {name}").with_context(|| format!("writing {}", checksum_path.display()))?;
    Ok(IsoImage {
        path: layout.output.clone(),
        checksum_path,
        sha256,
        size,
    })
}

/// Checks the volume label: ISO 9660 holds 32 characters, and the label ends up in `root=LABEL=...` and GRUB's
/// `search --label`, so only characters that need no quoting anywhere are allowed.
pub fn check_volume_label(label: &str) -> Result<()> {
    if label.is_empty() || label.len() > MAX_VOLUME_LABEL {
        bail!(
            "ISO volume label {label:?} is {} characters long; it must have 1 to {MAX_VOLUME_LABEL}",
            label.chars().count()
        );
    }
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        bail!("ISO volume label {label:?} contains {bad:?}; use only A-Z, a-z, 0-9, '_', '.' and '-'");
    }
    Ok(())
}

/// The files by ISO path (sorted, no duplicates, each a regular host file), after checking the whole layout.
fn checked_files(layout: &IsoLayout) -> Result<BTreeMap<String, PathBuf>> {
    check_volume_label(&layout.volume_label)?;
    let mut files = BTreeMap::new();
    for file in &layout.files {
        let path = file.path.trim_start_matches('/');
        if path.is_empty()
            || path
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            bail!("ISO path {:?} is not a relative path of plain names", file.path);
        }
        let meta = fs::metadata(&file.source).with_context(|| format!("{path}: reading {}", file.source.display()))?;
        if !meta.is_file() {
            bail!("{path}: {} is not a regular file", file.source.display());
        }
        if files.insert(path.to_string(), file.source.clone()).is_some() {
            bail!("ISO path {path} given twice");
        }
    }
    for path in files.keys() {
        if files.keys().any(|other| other.starts_with(&format!("{path}/"))) {
            bail!("ISO path {path} is both a file and a directory");
        }
    }
    if let Some(bios) = &layout.bios {
        let image = bios.eltorito_image.trim_start_matches('/');
        if !files.contains_key(image) {
            bail!("the BIOS El Torito image {image} is not among the ISO's files");
        }
        regular_file(&bios.hybrid_mbr, "GRUB's hybrid MBR (boot_hybrid.img)")?;
    }
    if let Some(esp) = &layout.efi_image {
        regular_file(esp, "the ESP image")?;
    }
    if layout.bios.is_none() && layout.efi_image.is_none() {
        bail!("an ISO needs BIOS or UEFI boot (or both)");
    }
    Ok(files)
}

fn regular_file(path: &Path, what: &str) -> Result<()> {
    let meta = fs::metadata(path).with_context(|| format!("{what}: reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{what}: {} is not a regular file", path.display());
    }
    Ok(())
}

/// The xorriso command list: settings native xorriso only has (dates, GUID), then the mkisofs emulation
/// grub-mkrescue uses, with the files as graft points.
fn xorriso_args(layout: &IsoLayout, files: &BTreeMap<String, PathBuf>, output: &Path) -> Result<Vec<OsString>> {
    let epoch = layout.epoch;
    let (year, month, day, hour, min, sec) = super::utc_civil(epoch);
    let uuid = format!("{year:04}{month:02}{day:02}{hour:02}{min:02}{sec:02}00");
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
    push(&["-report_about", "NOTE", "-abort_on", "FAILURE"]);
    push(&["-iso_nowtime", &format!("={epoch}")]);
    push(&["-volume_date", "uuid", &uuid]);
    push(&["-volume_date", "all_file_dates", &format!("={epoch}")]);
    push(&[
        "-boot_image",
        "any",
        &format!("gpt_disk_guid={}", gpt_disk_guid(layout, files)?),
    ]);
    push(&["-preparer_id", "rixos", "-application_id", "rixos"]);
    push(&[
        "-as",
        "mkisofs",
        "-iso-level",
        "3",
        "-r",
        "-J",
        "-joliet-long",
        "-V",
        &layout.volume_label,
    ]);
    push(&["-graft-points", "-no-pad"]);
    if let Some(bios) = &layout.bios {
        let image = bios.eltorito_image.trim_start_matches('/');
        push(&[
            "-b",
            image,
            "-no-emul-boot",
            "-boot-load-size",
            "4",
            "-boot-info-table",
            "--grub2-boot-info",
        ]);
        push(&["--grub2-mbr"]);
        args.push(bios.hybrid_mbr.clone().into_os_string());
    }
    if let Some(esp) = &layout.efi_image {
        args.extend(["-append_partition", "2", "0xef"].map(OsString::from));
        args.push(esp.clone().into_os_string());
        args.push("-appended_part_as_gpt".into());
        if layout.bios.is_some() {
            args.push("-eltorito-alt-boot".into());
        }
        args.extend(["-e", "--interval:appended_partition_2:all::", "-no-emul-boot"].map(OsString::from));
    }
    args.push("-o".into());
    args.push(output.as_os_str().to_owned());
    for (path, source) in files {
        let mut graft = escape_graft(OsStr::new(&format!("/{path}")));
        graft.push("=");
        graft.push(escape_graft(source.as_os_str()));
        args.push(graft);
    }
    args.push("--".into());
    Ok(args)
}

/// mkisofs graft points split at the first unescaped `=`; `\` and `=` in paths are escaped by `\`.
fn escape_graft(path: &OsStr) -> OsString {
    let mut out = Vec::new();
    for &b in path.as_bytes() {
        if b == b'\\' || b == b'=' {
            out.push(b'\\');
        }
        out.push(b);
    }
    OsStr::from_bytes(&out).to_owned()
}

/// 32 hex digits from a SHA-256 of the layout (label, epoch, every path and size, the boot images' sizes),
/// with RFC 4122 version 4 and variant bits in their on-disk (mixed-endian) places.
fn gpt_disk_guid(layout: &IsoLayout, files: &BTreeMap<String, PathBuf>) -> Result<String> {
    let mut hash = Sha256::new();
    hash.update(b"rixos iso gpt\0");
    hash.update(layout.volume_label.as_bytes());
    hash.update(layout.epoch.to_le_bytes());
    let len = |path: &Path| {
        fs::metadata(path)
            .map(|m| m.len())
            .with_context(|| format!("reading {}", path.display()))
    };
    for (path, source) in files {
        hash.update(path.as_bytes());
        hash.update([0]);
        hash.update(len(source)?.to_le_bytes());
    }
    for image in layout.bios.iter().map(|b| &b.hybrid_mbr).chain(&layout.efi_image) {
        hash.update(len(image)?.to_le_bytes());
    }
    let mut guid: [u8; 16] = hash.finalize()[..16].try_into().expect("16 bytes");
    guid[7] = (guid[7] & 0x0f) | 0x40;
    guid[8] = (guid[8] & 0x3f) | 0x80;
    Ok(guid.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let mut size = 0;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hash.finalize().iter().map(|b| format!("{b:02x}")).collect(), size))
}

/// libisoburn keeps global state: one xorriso object at a time per process.
static XORRISO: Mutex<()> = Mutex::new(());

/// Runs one xorriso command list in-process, as `xorriso ARGS... -end` would (without reading startup files),
/// and returns its messages; on failure the error quotes them.
pub fn run_xorriso(args: &[OsString]) -> Result<Vec<String>> {
    let mut c_args = vec![CString::new("xorriso").expect("no NUL")];
    for arg in args {
        c_args.push(CString::new(arg.as_bytes()).with_context(|| format!("xorriso argument {arg:?} contains NUL"))?);
    }
    let mut argv: Vec<*mut c_char> = c_args.iter().map(|arg| arg.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());
    let argc = i32::try_from(c_args.len()).context("too many xorriso arguments")?;

    let _one_at_a_time = XORRISO.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // SAFETY: the calls follow xorriso.h's order (new, startup, interpret, end, destroy); `argv` and the
    // strings it points at outlive the interpreter call; the lock keeps any other object from existing
    // meanwhile; message lists are read before they are destroyed.
    unsafe {
        use xorriso_sys::*;
        // The default (libburn's handler) would take over SIGINT and friends for the whole process.
        Xorriso__preset_signal_behavior(SIGNAL_BEHAVIOR_SYSTEM_DEFAULT, 0);
        let mut xorriso = std::ptr::null_mut();
        if Xorriso_new(&mut xorriso, c_args[0].as_ptr().cast_mut(), 0) <= 0 || xorriso.is_null() {
            bail!("xorriso: could not create its object (out of memory?)");
        }
        if Xorriso_startup_libraries(xorriso, 0) <= 0 {
            Xorriso_destroy(&mut xorriso, DESTROY_SHUTDOWN_LIBRARIES);
            bail!("xorriso: could not start libisofs/libburn");
        }
        let mut handle = 0;
        let redirected = Xorriso_push_outlists(xorriso, &mut handle, OUTLISTS_RESULT_AND_INFO) > 0;
        let mut idx = 1;
        let interpreted = Xorriso_interpreter(xorriso, argc, argv.as_mut_ptr(), &mut idx, 0);
        let ok = interpreted > 0;
        let ended = Xorriso_option_end(xorriso, if ok { 0 } else { END_DISCARD_CHANGES });
        let exit_value = Xorriso_make_return_value(xorriso, 0);
        let mut messages = Vec::new();
        if redirected {
            let (mut results, mut infos) = (std::ptr::null_mut(), std::ptr::null_mut());
            if Xorriso_pull_outlists(xorriso, handle, &mut results, &mut infos, 0) > 0 {
                for list in [&mut infos, &mut results] {
                    let mut item = *list;
                    while !item.is_null() {
                        let text = Xorriso_lst_get_text(item, 0);
                        if !text.is_null() {
                            messages.push(CStr::from_ptr(text).to_string_lossy().trim_end().to_string());
                        }
                        item = Xorriso_lst_get_next(item, 0);
                    }
                    Xorriso_lst_destroy_all(list, 0);
                }
            }
        }
        Xorriso_destroy(&mut xorriso, DESTROY_SHUTDOWN_LIBRARIES);
        if !ok || ended <= 0 || exit_value != 0 {
            let shown: Vec<&str> = messages.iter().map(String::as_str).filter(|m| !m.is_empty()).collect();
            let tail = &shown[shown.len().saturating_sub(25)..];
            bail!(
                "xorriso failed (exit value {exit_value}, at argument {idx} of {}):\n{}",
                args.len(),
                tail.join("\n")
            );
        }
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::esp::{EspFile, EspLayout, EspSource, build_esp};
    use crate::image::require_tool;
    use std::process::Command;

    #[test]
    fn volume_labels() {
        check_volume_label("rixos-minimal-25.05-x86_64").unwrap();
        check_volume_label(&"A".repeat(32)).unwrap();
        let err = check_volume_label(&"A".repeat(33)).unwrap_err().to_string();
        assert!(err.contains("33 characters long; it must have 1 to 32"), "{err}");
        assert!(check_volume_label("").is_err());
        let err = check_volume_label("my label").unwrap_err().to_string();
        assert!(err.contains("contains ' '"), "{err}");
    }

    #[test]
    fn graft_points_are_escaped() {
        assert_eq!(escape_graft(OsStr::new("/a=b\\c")), OsString::from("/a\\=b\\\\c"));
        assert_eq!(
            escape_graft(OsStr::new("/nix/store/x-y")),
            OsString::from("/nix/store/x-y")
        );
    }

    #[test]
    fn xorriso_reports_its_failures() {
        let err = format!("{:#}", run_xorriso(&["-no_such_command".into()]).unwrap_err());
        assert!(
            err.contains("xorriso failed") && err.contains("-no_such_command"),
            "{err}"
        );
    }

    /// GRUB's real BIOS El Torito image, so the test image is what a live ISO carries.
    fn grub_eltorito(dir: &Path) -> PathBuf {
        require_tool("grub-mkimage", "grub-common");
        assert!(
            Path::new("/usr/lib/grub/i386-pc/boot_hybrid.img").is_file(),
            "this test needs GRUB's i386-pc images: install the Debian package grub-pc-bin (scripts/setup)"
        );
        let out = dir.join("eltorito.img");
        let status = Command::new("grub-mkimage")
            .args(["-O", "i386-pc-eltorito", "-p", "/boot/grub", "-o"])
            .arg(&out)
            .args(["biosdisk", "iso9660", "normal", "search", "configfile", "linux"])
            .status()
            .unwrap();
        assert!(status.success());
        out
    }

    fn layout(dir: &Path, name: &str) -> IsoLayout {
        let eltorito = grub_eltorito(dir);
        let kernel = dir.join("kernel with = sign");
        fs::write(&kernel, vec![0xaa; 100_000]).unwrap();
        let cfg = dir.join("grub.cfg");
        fs::write(&cfg, "linux /boot/bzImage\n").unwrap();
        let efi = dir.join("BOOTX64.EFI");
        fs::write(&efi, vec![0x4d; 50_000]).unwrap();
        let esp = dir.join("esp.img");
        build_esp(
            &EspLayout {
                files: vec![EspFile {
                    path: "EFI/BOOT/BOOTX64.EFI".into(),
                    source: EspSource::File(efi),
                }],
                size: None,
                label: "EFIBOOT".into(),
                epoch: 1_700_000_000,
            },
            &esp,
        )
        .unwrap();
        IsoLayout {
            output: dir.join(name),
            volume_label: "RIXOS_TEST".into(),
            files: vec![
                IsoFile {
                    path: "boot/grub/grub.cfg".into(),
                    source: cfg,
                },
                IsoFile {
                    path: "boot/bzImage".into(),
                    source: kernel,
                },
                IsoFile {
                    path: "boot/grub/i386-pc/eltorito.img".into(),
                    source: eltorito,
                },
            ],
            bios: Some(BiosBoot {
                eltorito_image: "boot/grub/i386-pc/eltorito.img".into(),
                hybrid_mbr: "/usr/lib/grub/i386-pc/boot_hybrid.img".into(),
            }),
            efi_image: Some(esp),
            epoch: 1_700_000_000,
        }
    }

    fn stdout(command: &mut Command) -> String {
        let out = command
            .output()
            .unwrap_or_else(|err| panic!("running {command:?}: {err}"));
        assert!(
            out.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn hybrid_iso_boots_both_ways_and_is_reproducible() {
        require_tool("xorriso", "xorriso");
        require_tool("sgdisk", "gdisk");
        require_tool("fdisk", "fdisk");
        require_tool("sha256sum", "coreutils");
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = build_iso(&layout(one.path(), "rixos.iso")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let second = build_iso(&layout(two.path(), "rixos.iso")).unwrap();
        assert_eq!(first.sha256, second.sha256, "two builds differ");
        assert_eq!(fs::read(&first.path).unwrap(), fs::read(&second.path).unwrap());
        assert_eq!(first.size % 2048, 0);

        let checksum = fs::read_to_string(&first.checksum_path).unwrap();
        assert_eq!(checksum, format!("{}  rixos.iso\n", first.sha256));
        stdout(
            Command::new("sha256sum")
                .arg("-c")
                .arg("rixos.iso.sha256")
                .current_dir(one.path()),
        );

        let iso = &first.path;
        let el_torito = stdout(
            Command::new("xorriso")
                .arg("-indev")
                .arg(iso)
                .args(["-report_el_torito", "plain"]),
        );
        assert!(
            el_torito
                .lines()
                .any(|l| l.starts_with("El Torito boot img :   1  BIOS  y   none")),
            "{el_torito}"
        );
        assert!(
            el_torito
                .lines()
                .any(|l| l.starts_with("El Torito boot img :   2  UEFI  y   none")),
            "{el_torito}"
        );
        assert!(el_torito.contains("/boot/grub/i386-pc/eltorito.img"), "{el_torito}");
        assert!(el_torito.contains("boot-info-table grub2-boot-info"), "{el_torito}");

        let pvd = stdout(Command::new("xorriso").arg("-indev").arg(iso).arg("-pvd_info"));
        assert!(pvd.contains("Volume Id    : RIXOS_TEST"), "{pvd}");
        assert!(pvd.contains("Creation Time: 2023111422132000"), "{pvd}");
        let listing = stdout(
            Command::new("xorriso")
                .arg("-indev")
                .arg(iso)
                .args(["-find", "/", "-exec", "lsdl"]),
        );
        assert!(listing.contains("/boot/bzImage"), "{listing}");
        assert!(
            listing
                .lines()
                .all(|l| !l.starts_with('-') || l.contains("Nov 14  2023")),
            "{listing}"
        );

        let gpt = stdout(Command::new("sgdisk").arg("-p").arg(iso));
        assert!(
            gpt.lines().any(|l| l.contains("EF00")),
            "no EFI system partition in the GPT:\n{gpt}"
        );
        let verify = stdout(Command::new("sgdisk").arg("-v").arg(iso));
        assert!(verify.contains("No problems found"), "{verify}");
        let fdisk = stdout(Command::new("fdisk").arg("-l").arg(iso));
        assert!(
            fdisk.contains("Disklabel type: gpt") && fdisk.contains("EFI System"),
            "{fdisk}"
        );

        // The MBR: GRUB's hybrid boot code (xorriso patches only the boot image's address into it, at 0x1b0)
        // and a protective partition for the GPT.
        let image = fs::read(iso).unwrap();
        let hybrid = fs::read("/usr/lib/grub/i386-pc/boot_hybrid.img").unwrap();
        assert_eq!(
            image[..0x1b0],
            hybrid[..0x1b0],
            "the MBR code is not GRUB's boot_hybrid.img"
        );
        assert_eq!(image[510..512], [0x55, 0xaa]);
        assert_eq!(image[446 + 4], 0xee, "the first MBR partition should protect the GPT");
    }

    #[test]
    fn bad_layouts_are_refused_before_xorriso_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = layout(dir.path(), "x.iso");
        bad.volume_label = "x".repeat(40);
        assert!(build_iso(&bad).unwrap_err().to_string().contains("1 to 32"));
        let mut bad = layout(dir.path(), "x.iso");
        bad.bios.as_mut().unwrap().eltorito_image = "boot/missing.img".into();
        assert!(
            build_iso(&bad)
                .unwrap_err()
                .to_string()
                .contains("not among the ISO's files")
        );
        let mut bad = layout(dir.path(), "x.iso");
        bad.files.push(bad.files[0].clone());
        assert!(build_iso(&bad).unwrap_err().to_string().contains("given twice"));
        assert!(!dir.path().join("x.iso").exists());
    }
}
