# File systems and swap. Stage 1 mounts the root and the file systems needed for boot (initrd.nix); the others
# and the swap devices are systemd's, through /etc/fstab and systemd-fstab-generator, as on NixOS. A swap
# file with a size is created at activation when it is missing.
{ config, lib, pkgs, utils, ... }:
let
  inherit (lib) mkOption types;
  # fstab(5) separates fields by blanks: those inside a field are written as octal escapes.
  escape = lib.replaceStrings [ " " "\t" ] [ "\\040" "\\011" ];
  spec = fs: if fs.label != null then "LABEL=${fs.label}" else fs.device;
  laterFileSystems = lib.filter (fs: !utils.fsNeededForBoot fs) (lib.attrValues config.fileSystems);
  swaps = config.swapDevices;
  swapFiles = lib.filter (s: s.size != null) swaps;
  fstab = lib.concatMapStrings (fs: "${escape (spec fs)} ${escape fs.mountPoint} ${fs.fsType} ${lib.concatStringsSep "," fs.options} 0 0\n") laterFileSystems
    + lib.concatMapStrings (s: "${escape s.device} none swap defaults 0 0\n") swaps;
in
{
  options.fileSystems = mkOption {
    type = types.attrsOf (types.submodule ({ name, ... }: {
      options.mountPoint = mkOption { type = types.str; default = name; description = "Where it is mounted."; };
      options.device = mkOption { type = types.nullOr types.str; default = null; description = "The device (a path, or `/dev/disk/by-label/...`)."; };
      options.label = mkOption { type = types.nullOr types.str; default = null; description = "The file system label, instead of a device."; };
      options.fsType = mkOption { type = types.str; default = "auto"; description = "The file system type."; };
      options.options = mkOption { type = types.listOf types.str; default = [ "defaults" ]; description = "Mount options."; };
      options.autoResize = mkOption { type = types.bool; default = false; description = "Whether the file system grows to fill its partition at boot (systemd-growfs, online: ext4, btrfs, xfs), as on images written to a larger disk."; };
      options.neededForBoot = mkOption { type = types.bool; default = false; description = "Whether stage 1 mounts it (always so for /, /nix, /nix/store, /var, /etc, /usr and some others); the others are mounted by systemd from /etc/fstab."; };
    }));
    default = { };
    description = "The file systems to mount, by mount point.";
  };
  options.swapDevices = mkOption {
    type = types.listOf (types.submodule {
      options.device = mkOption { type = types.str; example = "/swapfile"; description = "The swap device or file (activated by systemd through /etc/fstab)."; };
      options.size = mkOption { type = types.nullOr types.ints.positive; default = null; description = "Size in MiB of a swap file that activation creates (with mkswap) when `device` does not exist."; };
    });
    default = [ ];
    description = "Swap devices and swap files.";
  };
  config = lib.mkIf (fstab != "") {
    assertions = map (s: {
      assertion = lib.hasPrefix "/" s.device && !lib.hasPrefix "/dev/" s.device;
      message = "swapDevices: `${s.device}' has a size, so it is a swap file to create, but it is not an absolute path outside /dev.";
    }) swapFiles;
    environment.etc.fstab.text = "# File systems stage 1 does not mount, and swap: systemd-fstab-generator makes their units.\n" + fstab;
    environment.etc."systemd/system-generators/systemd-fstab-generator".source =
      "${config.systemd.package}/lib/systemd/system-generators/systemd-fstab-generator";
    # systemd's swap units run these compiled-in paths.
    system.compatibilityLinks = lib.mkIf (swaps != [ ]) {
      "/sbin/swapon" = "${pkgs.mount}/sbin/swapon";
      "/sbin/swapoff" = "${pkgs.mount}/sbin/swapoff";
    };
    system.activationScripts.swapfiles = lib.mkIf (swapFiles != [ ]) {
      deps = [ "specialfs" ];
      text = lib.concatMapStrings (s: ''
        if [ ! -e ${lib.escapeShellArg s.device} ]; then
          echo "activation: creating the swap file ${s.device} (${toString s.size} MiB)" >&2
          (
            set -e
            file=${lib.escapeShellArg s.device}
            mkdir -p "$(dirname "$file")"
            rm -f "$file.tmp"
            touch "$file.tmp"
            chmod 0600 "$file.tmp"
            # fallocate is instant; some file systems refuse it for swap, so fall back to writing zeros.
            ${pkgs.util-linux}/bin/fallocate -l ${toString s.size}M "$file.tmp" || dd if=/dev/zero of="$file.tmp" bs=1M count=${toString s.size} status=none
            ${pkgs.util-linux}/sbin/mkswap -q "$file.tmp"
            mv "$file.tmp" "$file"
          ) || echo "activation: could not create the swap file ${s.device}" >&2
        fi
      '') swapFiles;
    };
  };
}
