{ config, lib, pkgs, ... }:
let inherit (lib) mkOption types; in
{
  options.environment = {
    systemPackages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages in the system profile (`/run/current-system/sw`)."; };
    etc = mkOption {
      type = types.attrsOf (types.submodule ({ name, config, ... }: {
        options.target = mkOption { type = types.str; default = name; description = "The path under /etc."; };
        options.text = mkOption { type = types.nullOr types.lines; default = null; description = "The file's contents."; };
        options.source = mkOption { type = types.nullOr (types.either types.path types.str); default = null; description = "A file to link to instead."; };
        options.mode = mkOption { type = types.str; default = "symlink"; description = "`symlink`, or a mode to copy the file with."; };
      }));
      default = { };
      description = "Files in /etc, by path.";
    };
    variables = mkOption { type = types.attrsOf types.str; default = { }; description = "Environment variables of every session."; };
    shellAliases = mkOption { type = types.attrsOf types.str; default = { }; description = "Aliases of every shell."; };
  };
  # What every system has on PATH, as NixOS's default packages (the Debian names), and rixos, which manages
  # the system as nix does NixOS.
  config.environment.systemPackages = with pkgs; [
    bash coreutils util-linux mount procps config.systemd.package hostname findutils gnugrep gnused gnutar gzip less iproute2 kmod login libc-bin
    rixos
  ];
  config.environment.etc.profile.text = lib.concatStringsSep "\n" (
    [ "export PATH=/run/wrappers/bin:/run/current-system/sw/bin:/run/current-system/sw/sbin" ]
    ++ lib.mapAttrsToList (n: v: "export ${n}=${lib.escapeShellArg v}") config.environment.variables
    ++ lib.mapAttrsToList (n: v: "alias ${n}=${lib.escapeShellArg v}") config.environment.shellAliases) + "\n";
}
