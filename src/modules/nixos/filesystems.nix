{ lib, ... }:
let inherit (lib) mkOption types; in
{
  options.fileSystems = mkOption {
    type = types.attrsOf (types.submodule ({ name, ... }: {
      options.mountPoint = mkOption { type = types.str; default = name; description = "Where it is mounted."; };
      options.device = mkOption { type = types.nullOr types.str; default = null; description = "The device (a path, or `/dev/disk/by-label/...`)."; };
      options.label = mkOption { type = types.nullOr types.str; default = null; description = "The file system label, instead of a device."; };
      options.fsType = mkOption { type = types.str; default = "auto"; description = "The file system type."; };
      options.options = mkOption { type = types.listOf types.str; default = [ "defaults" ]; description = "Mount options."; };
      options.neededForBoot = mkOption { type = types.bool; default = false; description = "Whether stage 1 mounts it (always so for /, /nix, /nix/store, /var, /etc, /usr and some others)."; };
    }));
    default = { };
    description = "The file systems to mount, by mount point.";
  };
  options.swapDevices = mkOption {
    type = types.listOf (types.submodule {
      options.device = mkOption { type = types.str; description = "The swap device or file."; };
      options.size = mkOption { type = types.nullOr types.int; default = null; description = "Size in MiB of a swap file to create."; };
    });
    default = [ ];
    description = "Swap devices.";
  };
}
