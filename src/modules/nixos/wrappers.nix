# Setuid, setgid and capability programs, as NixOS's security.wrappers: the store is never setuid, so at
# activation each wrapper is copied out of the store into a fresh /run/wrappers/wrappers.XXXXXXXXXX, given its
# owner, mode and file capabilities, and /run/wrappers/bin is swapped to it by one rename. A copy works
# because every ELF file in the store names its loader and libraries by absolute store path. /run/wrappers is
# a tmpfs of its own: /run is mounted nosuid.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  wrapperOpts = { name, ... }: {
    options = {
      source = mkOption { type = types.either types.path types.str; description = "The program to copy (a store path)."; };
      program = mkOption { type = types.str; default = name; description = "The name under /run/wrappers/bin."; };
      owner = mkOption { type = types.str; default = "root"; description = "The copy's owner (setuid runs as this user)."; };
      group = mkOption { type = types.str; default = "root"; description = "The copy's group (setgid runs with this group)."; };
      setuid = mkOption { type = types.bool; default = false; description = "Whether the copy runs as its owner."; };
      setgid = mkOption { type = types.bool; default = false; description = "Whether the copy runs with its group."; };
      capabilities = mkOption { type = types.commas; default = ""; example = "cap_net_raw+p"; description = "File capabilities, as setcap(8) writes them; empty for none."; };
      permissions = mkOption { type = types.str; default = "u+rx,g+x,o+x"; description = "The copy's mode, as chmod(1) takes it (setuid and setgid are added to it)."; };
    };
  };
  wrappers = lib.attrValues config.security.wrappers;
  setuidRoot = source: { inherit source; owner = "root"; group = "root"; setuid = true; };
  # One copy per wrapper, in the fresh directory `$dir`, by one `install` (each program started is slow under
  # emulation); its mode counts from 0, so the default gives NixOS's r-s--x--x. Capabilities come last:
  # changing the owner clears them.
  install = w: ''
    install -o ${lib.escapeShellArg w.owner} -g ${lib.escapeShellArg w.group} -m ${lib.escapeShellArg "${w.permissions}${lib.optionalString w.setuid ",u+s"}${lib.optionalString w.setgid ",g+s"}"} ${w.source} "$dir"/${lib.escapeShellArg w.program}
  '' + lib.optionalString (w.capabilities != "") ''
    ${pkgs.libcap2-bin}/sbin/setcap ${lib.escapeShellArg w.capabilities} "$dir"/${lib.escapeShellArg w.program}
  '';
in
{
  options.security.wrappers = mkOption {
    type = types.attrsOf (types.submodule wrapperOpts);
    default = { };
    example = lib.literalExpression ''{ ping = { source = "''${pkgs.iputils-ping}/bin/ping"; owner = "root"; group = "root"; capabilities = "cap_net_raw+p"; }; }'';
    description = "Programs copied to /run/wrappers/bin (first on PATH) with an owner, setuid/setgid bits and file capabilities.";
  };
  config = {
    # NixOS's defaults: mount (shadow.nix: su, sg, newgrp; passwd and chsh with mutable users), ping.
    security.wrappers = {
      mount = setuidRoot "${pkgs.mount}/bin/mount";
      umount = setuidRoot "${pkgs.mount}/bin/umount";
      su = setuidRoot "${pkgs.util-linux}/bin/su";
      sg = setuidRoot "${pkgs.login}/bin/sg";
      newgrp = setuidRoot "${pkgs.login}/bin/newgrp";
      ping = { source = "${pkgs.iputils-ping}/bin/ping"; capabilities = "cap_net_raw+p"; };
    } // lib.optionalAttrs config.users.mutableUsers {
      passwd = setuidRoot "${pkgs.passwd}/bin/passwd";
      chsh = setuidRoot "${pkgs.passwd}/bin/chsh";
    };
    assertions = map (w: {
      assertion = builtins.match "[^/]+" w.program != null && w.program != "." && w.program != "..";
      message = "security.wrappers.${w.program}.program: `${w.program}' must be a file name, without `/'.";
    }) wrappers;
    system.activationScripts.wrappers = {
      deps = [ "specialfs" "users" ];
      text = ''
        # A fresh directory per activation, swapped in whole; programs already running keep their open copy.
        if ! mountpoint -q /run/wrappers; then
          mkdir -p /run/wrappers
          ${pkgs.mount}/bin/mount -t tmpfs -o nodev,mode=0755,size=50% wrappers /run/wrappers
        fi
        dir=$(mktemp --directory /run/wrappers/wrappers.XXXXXXXXXX)
        chmod 0755 "$dir"
      '' + lib.concatMapStrings install wrappers + ''
        ln -sfn "$dir" /run/wrappers/bin.tmp
        mv -T /run/wrappers/bin.tmp /run/wrappers/bin
        for d in /run/wrappers/wrappers.*; do
          if [ "$d" != "$dir" ]; then rm -rf "$d"; fi
        done
      '';
    };
  };
}
