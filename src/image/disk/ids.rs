//! The identifiers of one disk image (disk and partition GUIDs, the ext4 UUID and hash seed), each a hash of
//! the image's inputs and what it identifies: the same toplevel and image name always give the same disk,
//! different images of one system never share a GUID.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What the identifiers of an image are derived from.
#[derive(Debug, Clone)]
pub struct DiskIds {
    seed: [u8; 32],
}

impl DiskIds {
    /// The identifiers of the image `image_name` of the system `toplevel` (its logical store path).
    pub fn new(toplevel: &str, image_name: &str) -> DiskIds {
        let mut hash = Sha256::new();
        hash.update(b"rixos disk image\0");
        hash.update(toplevel.as_bytes());
        hash.update([0]);
        hash.update(image_name.as_bytes());
        DiskIds {
            seed: hash.finalize().into(),
        }
    }

    /// A random-looking (version 4) UUID for `purpose` ("disk", "root", "ext4 hash seed", ...).
    pub fn uuid(&self, purpose: &str) -> Uuid {
        let mut hash = Sha256::new();
        hash.update(self.seed);
        hash.update(purpose.as_bytes());
        let digest = hash.finalize();
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_inputs_give_the_same_ids_and_each_purpose_its_own() {
        let top = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-system";
        let ids = DiskIds::new(top, "rixos");
        assert_eq!(ids.uuid("disk"), DiskIds::new(top, "rixos").uuid("disk"));
        assert_ne!(ids.uuid("disk"), ids.uuid("root"));
        assert_ne!(ids.uuid("disk"), DiskIds::new(top, "other").uuid("disk"));
        assert_eq!(ids.uuid("disk").get_version_num(), 4);
    }
}
