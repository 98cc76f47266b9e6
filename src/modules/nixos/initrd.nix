# Stage 1: rixos' own static init in a reproducible initrd with the modules the configuration names; it finds
# and checks the root, mounts it and the other file systems needed for boot, lustrates, and starts stage 2.
{ config, lib, pkgs, utils, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.boot.initrd;
  fileSystems = lib.attrValues config.fileSystems;
  neededForBoot = utils.fsNeededForBoot;
  spec = fs: if fs.label != null then "LABEL=${fs.label}" else fs.device;
  # `defaults` means nothing to mount(2); stage 1 gets the rest, or `rw`.
  options = fs: let o = lib.filter (x: x != "defaults") fs.options; in if o == [ ] then "rw" else lib.concatStringsSep "," o;
  root = config.fileSystems."/" or null;
  bootFileSystems = lib.filter (fs: neededForBoot fs && fs.mountPoint != "/") fileSystems;
  fsTypes = lib.unique (map (fs: fs.fsType) (lib.filter neededForBoot fileSystems));
  # The modules each file system type needs in stage 1.
  fsModules = {
    ext2 = [ "ext4" ]; ext3 = [ "ext4" ]; ext4 = [ "ext4" "crc32c_generic" ];
    vfat = [ "vfat" "nls_cp437" "nls_iso8859_1" ];
    "9p" = [ "9p" "9pnet_virtio" ];
    virtiofs = [ "virtiofs" ];
    iso9660 = [ "isofs" ];
    squashfs = [ "squashfs" "loop" ];
    overlay = [ "overlay" ];
  };
  checked = lib.filter (t: builtins.elem t [ "ext2" "ext3" "ext4" ]) fsTypes;
  configText = lib.optionalString (root != null) ''
    root ${spec root} ${root.fsType} ${options root}
  '' + lib.concatMapStrings (fs: "mount ${spec fs} ${fs.mountPoint} ${fs.fsType} ${options fs}\n") bootFileSystems
  + lib.optionalString cfg.checkJournalingFS (lib.concatMapStrings (t: "fsck ${t} ${pkgs.e2fsprogs}/sbin/e2fsck\n") checked)
  + "timeout ${toString cfg.deviceTimeout}\n"
  + cfg.extraConfig;
in
{
  options.boot.initrd = {
    availableKernelModules = mkOption { type = types.listOf types.str; default = [ ]; description = "Modules the initrd carries and loads when hardware needs them (failures are ignored)."; };
    kernelModules = mkOption { type = types.listOf types.str; default = [ ]; description = "Modules the initrd always loads."; };
    checkJournalingFS = mkOption { type = types.bool; default = true; description = "Whether stage 1 checks ext2/3/4 file systems with e2fsck before mounting them."; };
    deviceTimeout = mkOption { type = types.ints.positive; default = 30; description = "Seconds stage 1 waits for each device it needs."; };
    extraConfig = mkOption { type = types.lines; default = ""; internal = true; description = "More lines for the stage-1 configuration (`live` for live media)."; };
  };
  config = {
    assertions = [{
      assertion = root != null || cfg.extraConfig != "";
      message = "The root file system is not defined: set fileSystems.\"/\".";
    }];
    boot.initrd.availableKernelModules = lib.concatMap (t: fsModules.${t} or [ t ]) fsTypes;
    system.build.initrd = derivation {
      name = "initrd";
      system = "x86_64-linux";
      builder = "builtin:initrd";
      init = builtins.rixosStage1;
      shell = "${pkgs.busybox-static}/bin/busybox";
      modulesTree = config.boot.modulesTree;
      kernelModules = cfg.kernelModules;
      availableKernelModules = lib.unique cfg.availableKernelModules;
      programs = lib.optional (cfg.checkJournalingFS && checked != [ ]) "${pkgs.e2fsprogs}/sbin/e2fsck";
      config = configText;
    };
  };
}
