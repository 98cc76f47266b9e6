//! The wizard of `rixos install` without an answer file: the same choices as an answer file, asked with
//! `dialoguer` (arrow keys and Enter; it works on a VT and on a serial console alike). Passwords are hashed as
//! soon as they are typed, so the answers it offers to save hold no clear-text password.

use anyhow::{Result, bail};
use dialoguer::{Confirm, Input, Password, Select};

use super::answers::{
    Answers, Filesystem, FirmwareChoice, Layout, Swap, User, check_hostname, check_user_name, parse_size,
};
use super::disks::Disk;
use super::plan::{Firmware, sha512_crypt};

/// Asks for every choice; the disk from those of `disks` that can be installed to.
pub fn ask(disks: &[Disk], firmware: Firmware) -> Result<Answers> {
    let available: Vec<&Disk> = disks.iter().filter(|d| d.unavailable.is_none()).collect();
    if available.is_empty() {
        bail!("no disk can be installed to (each is listed above with the reason)");
    }
    let titles: Vec<String> = available
        .iter()
        .map(|d| {
            let parts = if d.partitions.is_empty() {
                "empty".to_string()
            } else {
                d.partitions
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            format!("{}: {parts}", d.title())
        })
        .collect();
    let chosen = Select::new()
        .with_prompt("The disk to erase and install onto")
        .items(&titles)
        .default(0)
        .interact()?;
    let disk = available[chosen];
    let kind = match firmware {
        Firmware::Uefi => "UEFI",
        Firmware::Bios => "BIOS",
    };
    println!(
        "The whole disk is used: a BIOS boot partition, a 1 GiB EFI system partition and an ext4 root, bootable \
         with BIOS and UEFI (this machine booted with {kind})."
    );

    let swap = [Swap::None, Swap::File, Swap::Partition];
    let swap = swap[Select::new()
        .with_prompt("Swap")
        .items(["none", "a swap file (/swapfile)", "a swap partition"])
        .default(1)
        .interact()?];
    let swap_size = if swap == Swap::None {
        None
    } else {
        Some(
            Input::<String>::new()
                .with_prompt("Swap size")
                .default("2G".into())
                .validate_with(|s: &String| parse_size(s).map(|_| ()).map_err(|e| e.to_string()))
                .interact_text()?,
        )
    };

    let hostname: String = Input::new()
        .with_prompt("Hostname")
        .default("rixos".into())
        .validate_with(|s: &String| check_hostname(s).map_err(|e| e.to_string()))
        .interact_text()?;
    let timezone: String = Input::new()
        .with_prompt("Time zone (as tzdata names it: Europe/Paris, America/New_York, UTC)")
        .default("UTC".into())
        .interact_text()?;
    let keyboard: String = Input::new()
        .with_prompt("Keyboard layout of the console")
        .default("us".into())
        .interact_text()?;

    let mut users = Vec::new();
    let name: String = Input::new()
        .with_prompt("Your user name (empty: none)")
        .allow_empty(true)
        .validate_with(|s: &String| {
            if s.is_empty() {
                Ok(())
            } else {
                check_user_name(s).map_err(|e| e.to_string())
            }
        })
        .interact_text()?;
    if !name.is_empty() {
        let password = password(&format!("Password for {name}"))?;
        let wheel = Confirm::new()
            .with_prompt(format!("May {name} administer the machine (the wheel group, sudo)?"))
            .default(true)
            .interact()?;
        let key = ssh_key(&format!("An SSH public key for {name}"))?;
        users.push(User {
            name,
            password: None,
            hashed_password: Some(password),
            wheel,
            ssh_keys: key.into_iter().collect(),
        });
    }
    let admin = users.iter().any(|u| u.wheel);
    let root_locked = Confirm::new()
        .with_prompt("Lock root's password (administer with sudo instead)?")
        .default(admin)
        .interact()?;
    let root_hashed_password = if root_locked {
        None
    } else {
        Some(password("Password for root")?)
    };
    let root_ssh_keys: Vec<String> = ssh_key("An SSH public key for root")?.into_iter().collect();
    let any_key = !root_ssh_keys.is_empty() || users.iter().any(|u| !u.ssh_keys.is_empty());
    let ssh = Confirm::new()
        .with_prompt("Run the SSH server?")
        .default(any_key)
        .interact()?;

    let by_id = disk.by_id.first().map(|id| format!("/dev/disk/by-id/{id}"));
    let answers = Answers {
        disk: Some(by_id.unwrap_or_else(|| disk.path.display().to_string())),
        serial: None,
        model: None,
        size: None,
        layout: Layout::Erase,
        firmware: FirmwareChoice::Auto,
        filesystem: Filesystem::Ext4,
        swap,
        swap_size,
        hostname,
        timezone,
        keyboard,
        root_password: None,
        root_hashed_password,
        root_locked,
        root_ssh_keys,
        ssh,
        users,
    };
    answers.check()?;
    Ok(answers)
}

/// A password typed twice, hashed.
fn password(prompt: &str) -> Result<String> {
    let clear = Password::new()
        .with_prompt(prompt)
        .with_confirmation("Again", "The two differ; once more")
        .interact()?;
    sha512_crypt(&clear)
}

fn ssh_key(prompt: &str) -> Result<Option<String>> {
    let key: String = Input::new()
        .with_prompt(format!("{prompt} (empty: none)"))
        .allow_empty(true)
        .validate_with(|s: &String| {
            if s.is_empty() || s.split_whitespace().count() >= 2 {
                Ok(())
            } else {
                Err("an SSH public key is `TYPE BASE64 [COMMENT]` on one line".to_string())
            }
        })
        .interact_text()?;
    Ok((!key.is_empty()).then_some(key))
}

/// The answers as an answer file (TOML) that installs the same system again with `--answers`.
pub fn answer_file(answers: &Answers) -> Result<String> {
    Ok(format!(
        "# Written by the rixos install wizard: `rixos install --answers FILE` installs the same again.\n{}",
        toml::to_string(answers)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_answers_read_back_as_the_same_answers() {
        let answers = Answers {
            disk: Some("/dev/disk/by-id/virtio-target".into()),
            serial: None,
            model: None,
            size: None,
            layout: Layout::Erase,
            firmware: FirmwareChoice::Auto,
            filesystem: Filesystem::Ext4,
            swap: Swap::File,
            swap_size: Some("2G".into()),
            hostname: "wizard".into(),
            timezone: "Europe/Paris".into(),
            keyboard: "fr".into(),
            root_password: None,
            root_hashed_password: None,
            root_locked: true,
            root_ssh_keys: vec!["ssh-ed25519 AAAAC3Nza root@laptop".into()],
            ssh: true,
            users: vec![User {
                name: "bob".into(),
                password: None,
                hashed_password: Some(sha512_crypt("bobpw").unwrap()),
                wheel: true,
                ssh_keys: Vec::new(),
            }],
        };
        let text = answer_file(&answers).unwrap();
        assert!(text.starts_with("# Written by the rixos install wizard"), "{text}");
        assert!(!text.contains("bobpw"), "no clear-text password is saved:\n{text}");
        let read = Answers::parse(&text, false).unwrap();
        assert_eq!(read, answers);
        read.check().unwrap();
    }
}
