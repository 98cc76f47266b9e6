{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  noEffect = "Has no effect yet: rixos does not install a bootloader (a later issue does).";
  # linux-image-amd64 is a metapackage: the kernel is the linux-image-VERSION-amd64 it depends on.
  debianKernel = pkgs.${lib.findFirst (lib.hasPrefix "linux-image-") "linux-image-amd64" pkgs.linux-image-amd64.debDepends};
in
{
  options.boot = {
    kernelPackages = mkOption { type = types.attrs; default = { kernel = debianKernel; }; defaultText = lib.literalExpression "{ kernel = <the kernel package pkgs.linux-image-amd64 points at>; }"; description = "The kernel and its modules (`kernel` is the package)."; };
    kernelParams = mkOption { type = types.listOf types.str; default = [ ]; description = "Parameters added to the kernel command line."; };
    kernelModules = mkOption { type = types.listOf types.str; default = [ ]; description = "Modules loaded in the second stage of boot."; };
    # The bootloader is installed by the disk image issue; until then these are declared so that NixOS
    # configurations evaluate, and say that they do nothing.
    loader.grub = {
      enable = mkOption { type = types.bool; default = true; description = "Whether to boot with GRUB. ${noEffect}"; };
      device = mkOption { type = types.nullOr types.str; default = null; example = "/dev/sda"; description = "The disk GRUB is installed on (BIOS), or `nodev`. ${noEffect}"; };
      devices = mkOption { type = types.listOf types.str; default = [ ]; description = "Disks GRUB is installed on. ${noEffect}"; };
      efiSupport = mkOption { type = types.bool; default = false; description = "Whether to install GRUB's EFI version. ${noEffect}"; };
    };
    loader.systemd-boot.enable = mkOption { type = types.bool; default = false; description = "Whether to boot with systemd-boot. ${noEffect}"; };
    loader.efi = {
      canTouchEfiVariables = mkOption { type = types.bool; default = false; description = "Whether to write EFI boot entries. ${noEffect}"; };
      efiSysMountPoint = mkOption { type = types.str; default = "/boot"; description = "Where the EFI system partition is mounted. ${noEffect}"; };
    };
  };
}
