# GRUB, the default bootloader (BIOS and UEFI), and what every loader shares (boot.loader.timeout,
# boot.loader.efi). GRUB's images are built here from Debian's grub-pc-bin and grub-efi-amd64-bin; the loader
# and its settings go into the toplevel's boot.json (`system.build.bootLoader`, its "rixos.loader"), from which
# src/boot/loader writes the menu of every generation onto the ESP (/boot) and the disk builder embeds the BIOS
# images, the way grub-install would, without running it on a device.
{ config, lib, pkgs, utils, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.boot.loader.grub;
  efi = config.boot.loader.efi;
  sdboot = config.boot.loader.systemd-boot;
  devices = lib.unique (lib.optional (cfg.device != null) cfg.device ++ cfg.devices);
  biosDevices = lib.filter (d: d != "nodev") devices;
  # What the menu needs: partition tables, the ESP's FAT, Linux, the script language, a serial console.
  modules = lib.concatStringsSep " " [ "part_gpt" "part_msdos" "fat" "ext2" "normal" "linux" "search" "configfile"
    "echo" "test" "serial" "terminal" "gzio" "sleep" "all_video" ];
  # The menu is on partition 2 (the ESP) of the disk the BIOS booted: no UUID to know before the disk exists.
  bios = utils.runCommand "grub-bios-core" { path = [ pkgs.grub-common ]; } ''
    mkdir -p $out
    grub-mkimage -O i386-pc -d ${pkgs.grub-pc-bin}/lib/grub/i386-pc -p '(,gpt2)/grub' -o $out/core.img biosdisk ${modules}
    cp ${pkgs.grub-pc-bin}/lib/grub/i386-pc/boot.img $out/boot.img
  '';
  # A prefix without a device is the partition the firmware loaded GRUB from (its loaded image's device), which
  # is the ESP holding grub/grub.cfg; a search by file or label could pick another disk's ESP.
  grubEfi = utils.runCommand "grub-efi" { path = [ pkgs.grub-common ]; } ''
    mkdir -p $out
    grub-mkimage -O x86_64-efi -d ${pkgs.grub-efi-amd64-bin}/lib/grub/x86_64-efi -p /grub -o $out/grubx64.efi \
      efi_gop efi_uga ${modules}
  '';
  # What adds the loader's entry to the firmware's boot order on a machine booted with UEFI.
  efiBootmgr = if efi.canTouchEfiVariables && ((cfg.enable && cfg.efiSupport) || sdboot.enable)
    then "${pkgs.efibootmgr}/bin/efibootmgr" else null;
in
{
  options.boot.loader = {
    timeout = mkOption {
      type = types.nullOr types.ints.unsigned;
      default = 5;
      description = "Seconds the boot menu waits before booting the newest generation; null waits until an entry is chosen.";
    };
    grub = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Whether to boot with GRUB. Its menu (/boot/grub/grub.cfg on the ESP) lists every generation of the system,
          newest first and default, and boots BIOS machines (`device`) and UEFI ones (`efiSupport`).'';
      };
      device = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/dev/vda";
        description = ''
          The disk whose MBR boots GRUB on BIOS machines (GRUB's core image goes into its BIOS boot partition), or
          "nodev" for none (UEFI only). The same as listing it in `devices`.'';
      };
      devices = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "/dev/vda" ];
        description = "Disks GRUB is installed on for BIOS machines, as `device`.";
      };
      efiSupport = mkOption {
        type = types.bool;
        default = false;
        description = "Whether to install GRUB's UEFI image on the ESP (EFI/rixos/grubx64.efi).";
      };
      efiInstallAsRemovable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Whether to install GRUB's UEFI image also at the path firmware boots when it has no boot entry
          (EFI/BOOT/BOOTX64.EFI): for disk images, removable media, and firmware whose variables cannot be written.'';
      };
      configurationLimit = mkOption {
        type = types.ints.positive;
        default = 100;
        description = "How many generations the menu lists, newest first; older ones' kernels and initrds leave the ESP.";
      };
      extraConfig = mkOption {
        type = types.lines;
        default = "";
        example = ''
          serial --unit=0 --speed=115200
          terminal_input --append serial
          terminal_output --append serial
        '';
        description = "GRUB commands run before the menu is shown: a serial console, say.";
      };
      extraEntries = mkOption {
        type = types.lines;
        default = "";
        example = ''
          menuentry "Firmware setup" {
            fwsetup
          }
        '';
        description = "Menu entries of GRUB's script language, after the generations'.";
      };
    };
    efi = {
      canTouchEfiVariables = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Whether installing the bootloader on a machine adds its entry to the firmware's boot order (EFI
          variables). Disk images cannot: they rely on the removable path.'';
      };
      efiSysMountPoint = mkOption {
        type = types.str;
        default = "/boot";
        description = "Where the running system mounts the EFI system partition, which the bootloader's files are written to.";
      };
    };
  };

  config = {
    assertions = lib.optionals cfg.enable [
      { assertion = cfg.efiInstallAsRemovable -> cfg.efiSupport; message = "boot.loader.grub.efiInstallAsRemovable needs boot.loader.grub.efiSupport = true."; }
      { assertion = cfg.efiInstallAsRemovable -> !efi.canTouchEfiVariables; message = "boot.loader.grub.efiInstallAsRemovable and boot.loader.efi.canTouchEfiVariables exclude each other (as in NixOS): turn one off."; }
    ];
    # Where the loader has a firmware boot entry, efibootmgr shows and edits it.
    environment.systemPackages = lib.optional (efiBootmgr != null) pkgs.efibootmgr;
    # The toplevel's boot.json holds this as "rixos.loader"; every setting is there whichever loader is chosen,
    # the images only for the loader that boots.
    system.build.bootLoader = {
      kind = if cfg.enable then "grub" else if sdboot.enable then "systemd-boot" else "none";
      timeout = config.boot.loader.timeout;
      configurationLimit = if cfg.enable then cfg.configurationLimit else sdboot.configurationLimit;
      grub = {
        inherit devices;
        inherit (cfg) configurationLimit efiInstallAsRemovable extraConfig extraEntries;
        bios = if cfg.enable && biosDevices != [ ] then { bootImage = "${bios}/boot.img"; coreImage = "${bios}/core.img"; } else null;
        efi = if cfg.enable && cfg.efiSupport then "${grubEfi}/grubx64.efi" else null;
      };
      systemd-boot = {
        inherit (sdboot) configurationLimit editor;
        efi = if sdboot.enable then "${pkgs.systemd-boot-efi}/lib/systemd/boot/efi/systemd-bootx64.efi" else null;
      };
      efi = {
        inherit (efi) canTouchEfiVariables efiSysMountPoint;
        # What adds the loader's entry to the firmware's boot order, on a machine booted with UEFI.
        efibootmgr = efiBootmgr;
      };
    };
  };
}
