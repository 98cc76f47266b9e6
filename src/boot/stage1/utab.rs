//! The mounts stage 1 made, told to systemd as mounts of the initrd.
//!
//! systemd stops every mount unit it finds in /proc/self/mountinfo at shutdown unless the mount is marked
//! `x-initrd.mount`; /nix/store (which systemd itself runs from), the live medium and its squashfs cannot be
//! unmounted then, and each shows up as "Failed unmounting". The mark is a userspace option, kept by libmount
//! in /run/mount/utab, which systemd reads through libmount; so stage 1 writes one line there for each
//! filesystem it mounted. std only: the library's tests include this file.

/// The utab lines for every mount below `new_root` in `mountinfo` (the text of /proc/self/mountinfo), with
/// their targets as they will be seen once `new_root` is `/`. `skip` are targets (in the new root) to leave
/// out, such as the API filesystems systemd manages itself.
pub(crate) fn initrd_mounts(mountinfo: &str, new_root: &str, skip: &[&str]) -> String {
    let mut out = String::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(separator) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(root), Some(target), Some(source)) = (fields.get(3), fields.get(4), fields.get(separator + 2)) else {
            continue;
        };
        let inside = match target.strip_prefix(new_root) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => continue,
        };
        if skip
            .iter()
            .any(|s| inside == *s || inside.strip_prefix(*s).is_some_and(|r| r.starts_with('/')))
        {
            continue;
        }
        // Fields stay in mountinfo's own escaping (\040 for a space), which is utab's too.
        out.push_str(&format!(
            "SRC={source} TARGET={inside} ROOT={root} OPTS=x-initrd.mount\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
21 1 0:20 / / rw,relatime - rootfs rootfs rw
22 21 0:21 / /proc rw - proc proc rw
30 21 0:30 / /mnt-root rw,relatime - tmpfs tmpfs rw,mode=755
31 30 11:0 / /mnt-root/iso ro,relatime - iso9660 /dev/sr0 ro
32 30 7:0 / /mnt-root/nix/.ro-store ro,relatime - squashfs /dev/loop0 ro
33 30 0:31 / /mnt-root/nix/.rw-store rw - tmpfs tmpfs rw
34 30 0:32 / /mnt-root/nix/store rw - overlay overlay rw,lowerdir=/mnt-root/nix/.ro-store
35 30 0:33 / /mnt-root/run rw - tmpfs tmpfs rw,mode=755
36 35 0:34 / /mnt-root/run/keys rw - tmpfs tmpfs rw
37 30 0:35 /sub /mnt-root/my\\040data rw - ext4 /dev/vdb rw
38 21 0:36 / /mnt-rootless rw - tmpfs tmpfs rw
";

    #[test]
    fn every_mount_below_the_new_root_is_marked_with_its_target_inside() {
        assert_eq!(
            initrd_mounts(MOUNTINFO, "/mnt-root", &["/run", "/dev", "/proc", "/sys"]),
            "SRC=tmpfs TARGET=/ ROOT=/ OPTS=x-initrd.mount\n\
             SRC=/dev/sr0 TARGET=/iso ROOT=/ OPTS=x-initrd.mount\n\
             SRC=/dev/loop0 TARGET=/nix/.ro-store ROOT=/ OPTS=x-initrd.mount\n\
             SRC=tmpfs TARGET=/nix/.rw-store ROOT=/ OPTS=x-initrd.mount\n\
             SRC=overlay TARGET=/nix/store ROOT=/ OPTS=x-initrd.mount\n\
             SRC=/dev/vdb TARGET=/my\\040data ROOT=/sub OPTS=x-initrd.mount\n"
        );
    }
}
