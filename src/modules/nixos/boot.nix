{ lib, pkgs, ... }:
let
  inherit (lib) mkOption mkEnableOption types;
  # linux-image-amd64 is a metapackage: the kernel is the linux-image-VERSION-amd64 it depends on.
  debianKernel = pkgs.${lib.findFirst (lib.hasPrefix "linux-image-") "linux-image-amd64" pkgs.linux-image-amd64.debDepends};
in
{
  options.boot = {
    kernelPackages = mkOption { type = types.attrs; default = { kernel = debianKernel; }; defaultText = lib.literalExpression "{ kernel = <the kernel package pkgs.linux-image-amd64 points at>; }"; description = "The kernel and its modules (`kernel` is the package)."; };
    kernelParams = mkOption { type = types.listOf types.str; default = [ ]; description = "Parameters added to the kernel command line."; };
    kernelModules = mkOption { type = types.listOf types.str; default = [ ]; description = "Modules loaded in the second stage of boot."; };
    loader.grub = {
      enable = mkOption { type = types.bool; default = true; description = "Whether to boot with GRUB."; };
      device = mkOption { type = types.nullOr types.str; default = null; example = "/dev/sda"; description = "The disk GRUB is installed on (BIOS), or `nodev`."; };
      devices = mkOption { type = types.listOf types.str; default = [ ]; description = "Disks GRUB is installed on."; };
      efiSupport = mkEnableOption "GRUB's EFI version";
    };
    loader.systemd-boot.enable = mkEnableOption "systemd-boot";
    loader.efi = {
      canTouchEfiVariables = mkEnableOption "writing EFI boot entries";
      efiSysMountPoint = mkOption { type = types.str; default = "/boot"; description = "Where the EFI system partition is mounted."; };
    };
  };
}
