//! Every tool a script in scripts/ checks for (`for tool in ...; do command -v ...`) comes from a Debian
//! package that scripts/setup installs (or is part of every Debian system), so a script never stops at once
//! on a fresh machine after setup.

use std::path::Path;
use std::process::Command;

fn scripts() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// The package names of setup's PACKAGES list.
fn setup_packages() -> Vec<String> {
    let setup = std::fs::read_to_string(scripts().join("setup")).unwrap();
    let start = setup.find("PACKAGES=(").expect("setup has a PACKAGES list");
    let end = start + setup[start..].find("\n)").unwrap();
    setup[start + "PACKAGES=(".len()..end]
        .lines()
        .filter_map(|l| l.split('#').next()?.split_whitespace().next().map(str::to_string))
        .collect()
}

/// The tools each script checks for in `for tool in A B C; do` loops.
fn checked_tools() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(scripts()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            let Some(list) = line.trim().strip_prefix("for tool in ") else {
                continue;
            };
            let list = list.split(';').next().unwrap();
            for tool in list.split_whitespace() {
                found.push((
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    tool.to_string(),
                ));
            }
        }
    }
    found
}

/// The package owning `file`, by dpkg's database.
fn owner(file: &Path) -> Option<String> {
    let real = std::fs::canonicalize(file).ok()?;
    // Merged /usr: dpkg may know the file under /bin or /sbin, or under /usr.
    let merged = match real.strip_prefix("/usr") {
        Ok(rest) => Path::new("/").join(rest),
        Err(_) => Path::new("/usr").join(real.strip_prefix("/").ok()?),
    };
    for candidate in [file.to_path_buf(), real.clone(), merged] {
        let out = Command::new("dpkg").arg("-S").arg(&candidate).output().ok()?;
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            return Some(text.split(':').next()?.trim().to_string());
        }
    }
    None
}

fn essential(package: &str) -> bool {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Essential} ${Priority}", package])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.starts_with("yes") || text.ends_with("required")
}

#[test]
fn every_tool_a_script_checks_for_is_installed_by_setup() {
    let packages = setup_packages();
    let tools = checked_tools();
    assert!(
        tools.iter().any(|(s, t)| s == "bench-iso" && t == "mkfs.vfat"),
        "{tools:?}"
    );
    let mut missing = Vec::new();
    for (script, tool) in tools {
        let path = if tool.starts_with('/') {
            Some(std::path::PathBuf::from(&tool))
        } else {
            std::env::split_paths(&std::env::var_os("PATH").unwrap())
                .map(|d| d.join(&tool))
                .find(|p| p.is_file())
        };
        let Some(path) = path.filter(|p| p.exists()) else {
            missing.push(format!(
                "{script}: {tool} is not installed (scripts/setup installs nothing that has it)"
            ));
            continue;
        };
        match owner(&path) {
            Some(package) if packages.contains(&package) || essential(&package) => {}
            Some(package) => missing.push(format!(
                "{script}: {tool} comes from {package}, which setup does not list"
            )),
            None => missing.push(format!(
                "{script}: {tool} ({}) belongs to no Debian package",
                path.display()
            )),
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
