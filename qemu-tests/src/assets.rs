//! What the VM tests boot with, all from Debian's packages installed by `scripts/setup`: the unpacked Debian
//! kernel and its modules, a static busybox for tiny test userlands, and OVMF. Each finder fails with the
//! command that fixes it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use rixos::boot::cpio::Initramfs;
use rixos::boot::kmod::ModuleIndex;

const SETUP_HINT: &str = "run scripts/setup as root first";

/// The Debian kernel unpacked by scripts/setup (`$RIXOS_TEST_KERNEL_DIR/current`).
#[derive(Debug, Clone)]
pub struct TestKernel {
    pub vmlinuz: PathBuf,
    /// `lib/modules/<version>`, with the modules.dep that setup generated.
    pub modules_dir: PathBuf,
}

impl TestKernel {
    pub fn find() -> Result<TestKernel> {
        let root = rixos::qemu::accel::test_kernel_dir().join("current");
        let only_entry = |dir: &Path, prefix: &str| -> Result<PathBuf> {
            let entries = std::fs::read_dir(dir)
                .with_context(|| format!("the test kernel is missing: {} ({SETUP_HINT})", dir.display()))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix))
                })
                .collect();
            found.sort();
            ensure!(
                found.len() == 1,
                "expected one {prefix}* in {}, found {found:?} ({SETUP_HINT})",
                dir.display()
            );
            Ok(found.remove(0))
        };
        let vmlinuz = only_entry(&root.join("boot"), "vmlinuz-")?;
        let modules_dir = only_entry(&root.join("lib/modules"), "")?;
        ensure!(
            modules_dir.join("modules.dep").exists(),
            "{} has no modules.dep ({SETUP_HINT})",
            modules_dir.display()
        );
        Ok(TestKernel { vmlinuz, modules_dir })
    }
}

/// The statically linked busybox from Debian's busybox-static.
pub fn busybox() -> Result<PathBuf> {
    let path = PathBuf::from("/bin/busybox");
    let mut header = Vec::new();
    std::fs::File::open(&path)
        .with_context(|| format!("{} is missing: install busybox-static ({SETUP_HINT})", path.display()))?
        .take(1 << 16)
        .read_to_end(&mut header)?;
    // A dynamically linked busybox (Debian's `busybox`) names its loader; it would not run in a bare initrd.
    ensure!(
        !header.windows(14).any(|w| w == b"ld-linux-x86-6"),
        "{} is dynamically linked: install busybox-static instead of busybox",
        path.display()
    );
    Ok(path)
}

/// OVMF's code and its pristine variable store (4 MiB builds, as Debian ships them).
#[derive(Debug, Clone)]
pub struct Ovmf {
    pub code: PathBuf,
    pub vars: PathBuf,
}

impl Ovmf {
    pub fn find() -> Result<Ovmf> {
        let dir = Path::new("/usr/share/OVMF");
        let ovmf = Ovmf {
            code: dir.join("OVMF_CODE_4M.fd"),
            vars: dir.join("OVMF_VARS_4M.fd"),
        };
        for file in [&ovmf.code, &ovmf.vars] {
            ensure!(
                file.exists(),
                "{} is missing: install ovmf ({SETUP_HINT})",
                file.display()
            );
        }
        Ok(ovmf)
    }
}

/// A tiny initrd: busybox as the whole userland, chosen kernel modules (with their dependencies), and an init
/// script that mounts /proc, /sys and /dev, loads the modules, then runs the test's own script.
#[derive(Debug, Clone)]
pub struct BusyboxInitrd {
    script: String,
    modules: Vec<String>,
    files: Vec<(String, String)>,
}

impl BusyboxInitrd {
    /// `script` is shell code run by busybox sh as PID 1 once the basics are mounted.
    pub fn new(script: &str) -> Self {
        BusyboxInitrd {
            script: script.to_string(),
            modules: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn modules(mut self, names: &[&str]) -> Self {
        self.modules.extend(names.iter().map(|n| n.to_string()));
        self
    }

    pub fn file(mut self, path: &str, contents: &str) -> Self {
        self.files.push((path.to_string(), contents.to_string()));
        self
    }

    /// Writes the initrd to `path`.
    pub fn write(&self, kernel: &TestKernel, path: &Path) -> Result<()> {
        let mut archive = Initramfs::new(0);
        archive.file_from_host("bin/busybox", 0o755, &busybox()?)?;
        archive.symlink("bin/sh", "busybox")?;
        for dir in ["proc", "sys", "dev", "tmp", "mnt"] {
            archive.directory(dir, 0o755)?;
        }
        let index = ModuleIndex::load(&kernel.modules_dir)?;
        let mut init = String::from(
            "#!/bin/sh\n\
             /bin/busybox --install -s /bin\n\
             mount -t proc proc /proc\n\
             mount -t sysfs sysfs /sys\n\
             mount -t devtmpfs devtmpfs /dev\n",
        );
        for module in index.load_order(&self.modules)? {
            let name = module.to_str().context("module path is not UTF-8")?;
            archive.file_from_host(&format!("modules/{name}"), 0o644, &index.root().join(&module))?;
            init.push_str(&format!("insmod /modules/{name}\n"));
        }
        for (file, contents) in &self.files {
            archive.file(file, 0o644, contents.as_bytes())?;
        }
        init.push_str(&self.script);
        init.push('\n');
        archive.file("init", 0o755, init)?;
        let out = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        archive.write_to(std::io::BufWriter::new(out))?;
        Ok(())
    }
}

/// Converts the binary PPM (P6) QEMU's screendump writes into a PNG.
pub fn ppm_to_png(ppm: &Path, png_path: &Path) -> Result<()> {
    let mut reader = BufReader::new(std::fs::File::open(ppm).with_context(|| format!("opening {}", ppm.display()))?);
    // Header: magic, width, height, maxval, separated by white space, then one white space byte.
    let mut fields = Vec::new();
    while fields.len() < 4 {
        let mut line = String::new();
        ensure!(
            reader.read_line(&mut line)? > 0,
            "{}: truncated PPM header",
            ppm.display()
        );
        let line = line.split('#').next().unwrap_or_default();
        fields.extend(line.split_whitespace().map(str::to_string));
    }
    if fields[0] != "P6" || fields[3] != "255" {
        bail!("{}: not an 8-bit binary PPM (header {fields:?})", ppm.display());
    }
    let width: u32 = fields[1].parse().context("PPM width")?;
    let height: u32 = fields[2].parse().context("PPM height")?;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    reader
        .read_exact(&mut pixels)
        .with_context(|| format!("{}: truncated PPM pixels", ppm.display()))?;
    let out = std::fs::File::create(png_path).with_context(|| format!("creating {}", png_path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(out), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppm_converts_to_a_png_with_the_same_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let ppm = dir.path().join("a.ppm");
        let mut data = b"P6\n2 1\n255\n".to_vec();
        data.extend_from_slice(&[255, 0, 0, 0, 0, 255]);
        std::fs::write(&ppm, data).unwrap();
        let png_path = dir.path().join("a.png");
        ppm_to_png(&ppm, &png_path).unwrap();
        let decoder = png::Decoder::new(std::fs::File::open(&png_path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (2, 1));
        assert_eq!(&buf[..6], &[255, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn truncated_ppm_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ppm = dir.path().join("a.ppm");
        std::fs::write(&ppm, b"P6\n4 4\n255\nabc").unwrap();
        let err = ppm_to_png(&ppm, &dir.path().join("a.png")).unwrap_err();
        assert!(format!("{err:#}").contains("truncated PPM pixels"), "{err:#}");
    }
}
