# `rixos image build --format raw|qcow2`: the configuration installed on a disk, as an image file. One layout
# boots on BIOS and UEFI (GPT: a BIOS boot partition, the ESP mounted at /boot, the ext4 root labelled
# `rixos`); the root holds its own registered store, the system profile, the channel the system was built from
# and the configuration with its imports, so the machine can rebuild itself. On first boot the root grows to
# fill a larger disk (boot.growPartition, fileSystems."/".autoResize).
{ config, lib, pkgs, configurationFile ? null, configurationFiles ? [ ], ... }:
let
  inherit (lib) mkOption types;
  cfg = config.image;
  top = config.system.build.toplevel;
  # Files of the configuration's own directory go to /etc/rixos at their place relative to it; a file imported
  # from elsewhere keeps its absolute path on the image, so the copied configuration evaluates there as here.
  configDir = if configurationFile != null then dirOf configurationFile else null;
  placed = file:
    if configDir != null && lib.hasPrefix "${configDir}/" file
    then "etc/rixos/${lib.removePrefix "${configDir}/" file}"
    else lib.removePrefix "/" file;
  copied = file: builtins.path { path = file; name = "config-" + baseNameOf file; };
  defaultConfiguration = builtins.toFile "configuration.nix" ''
    # The image was built from rixos' own ${cfg.defaultConfiguration}: rebuild from it, or replace this file.
    { imports = [ ${cfg.defaultConfiguration} ]; }
  '';
  configurationList =
    if configurationFile != null
    then map (f: "${placed f}\t${copied f}\n") configurationFiles
    else [ "etc/rixos/configuration.nix\t${defaultConfiguration}\n" ];
  image = format: derivation {
    name = "${cfg.baseName}-${format}";
    system = "x86_64-linux";
    builder = "builtin:disk-image";
    toplevel = top;
    imageName = cfg.baseName;
    inherit format;
    diskSize = toString cfg.diskSize;
    espSize = toString cfg.espSize;
    channel = cfg.channel;
    channelList = cfg.channelList;
    configurationFiles = lib.concatStrings configurationList;
    # Every timestamp of the image: 1980-01-01, the earliest FAT can hold.
    sourceDateEpoch = "315532800";
  };
in
{
  options.image = {
    baseName = mkOption { type = types.str; default = "rixos-${config.system.stateVersion}-${config.networking.hostName}"; description = "The image file's name, without its extension."; };
    diskSize = mkOption {
      type = types.either (types.enum [ "auto" ]) types.ints.positive;
      default = "auto";
      description = "The disk's size in MiB, or \"auto\": the closure plus headroom (the root grows into a larger disk on first boot).";
    };
    espSize = mkOption { type = types.ints.positive; default = 256; description = "The EFI system partition's size in MiB (at least 256)."; };
    channel = mkOption { type = types.str; default = ""; internal = true; description = "The store path of the channels generation the system is built from (set by `rixos image build`)."; };
    channelList = mkOption { type = types.str; default = ""; internal = true; description = "The channel list (`URL NAME` lines) the machine updates from (set by `rixos image build`)."; };
    defaultConfiguration = mkOption { type = types.str; default = "<rixos/images/raw.nix>"; internal = true; description = "What /etc/rixos/configuration.nix imports when the image was built without a configuration file."; };
  };
  config = {
    assertions = [
      { assertion = cfg.espSize >= 256; message = "image.espSize must be at least 256 (MiB), so FAT32 fits and the kernels of several generations do."; }
    ];
    fileSystems."/" = lib.mkOverride 60 { device = "/dev/disk/by-label/rixos"; fsType = "ext4"; autoResize = true; };
    fileSystems."/boot" = lib.mkOverride 60 { device = "/dev/disk/by-label/ESP"; fsType = "vfat"; options = [ "umask=0077" ]; };
    boot.growPartition = lib.mkDefault true;
    # The machine rebuilds its /etc/rixos/configuration.nix with this module, as it was built.
    system.rebuildModules = [ "<rixos/nixos/disk-image.nix>" ];
    # One disk for both firmware kinds, as NixOS's hybrid images: GRUB's BIOS images go into the disk itself
    # (its device as the booted machine sees it, for later installs), its EFI image to the removable path, which
    # firmware without a boot entry for the disk finds.
    boot.loader.grub.device = lib.mkDefault "/dev/vda";
    boot.loader.grub.efiSupport = lib.mkDefault true;
    boot.loader.grub.efiInstallAsRemovable = lib.mkDefault true;
    # Virtual and real disks alike: the drivers a disk image's root may sit behind.
    boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" "virtio_scsi" "ahci" "sd_mod" "nvme" "xen_blkfront" "hv_storvsc" ];
    system.build.rawImage = image "raw";
    system.build.qcow2Image = image "qcow2";
  };
}
