# systemd-boot (UEFI only), Debian's: on the ESP, EFI/systemd/systemd-bootx64.efi and the fallback
# EFI/BOOT/BOOTX64.EFI (as `bootctl install`), loader/loader.conf and an entry per generation in loader/entries
# with the kernels and initrds under EFI/rixos. The files are written by src/boot/loader from boot.json (see
# grub.nix, which describes both loaders there).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.boot.loader.systemd-boot;
in
{
  options.boot.loader.systemd-boot = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = "Whether to boot with systemd-boot instead of GRUB (UEFI machines only; turns GRUB off by default).";
    };
    configurationLimit = mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      example = 10;
      description = "How many generations the menu lists, newest first; null lists them all. Older ones' kernels and initrds leave the ESP.";
    };
    editor = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether the kernel command line can be edited in the menu (as in NixOS, on by default). Anyone at the
        console can then boot with `init=/bin/sh`, so turn it off where that matters.'';
    };
  };

  config = lib.mkIf cfg.enable {
    boot.loader.grub.enable = lib.mkDefault false;
    assertions = [{
      assertion = !config.boot.loader.grub.enable;
      message = "boot.loader.systemd-boot.enable and boot.loader.grub.enable are both true: one bootloader installs a machine, so turn one off.";
    }];
  };
}
