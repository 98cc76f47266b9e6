# The system's toplevel: etc, sw, the kernel, its modules, initrd and parameters, activation and init; built only when every
# assertion holds (the failed ones are listed), after the check that every definition has an option.
{ config, lib, pkgs, options, ... }:
let
  etcEntries = lib.attrValues config.environment.etc;
  etcFile = e:
    if e.source != null then toString e.source
    else lib.writeText (lib.replaceStrings [ "/" ] [ "-" ] e.target) e.text;
  linkfarm = name: links: derivation {
    inherit name;
    system = "x86_64-linux";
    builder = "builtin:linkfarm";
    links = lib.concatMapStrings (l: "${l.path}\t${l.target}\n") links;
  };
  etc = linkfarm "etc" (map (e: { path = e.target; target = etcFile e; }) (lib.filter (e: e.text != null || e.source != null) etcEntries));
  sw = derivation {
    name = "system-path";
    system = "x86_64-linux";
    builder = "builtin:buildenv";
    manifest = "";
    derivations = map (p: "true 5 1 ${p}") (lib.unique config.environment.systemPackages);
  };
  inherit (config.system.build) activate init initrd;
  kernel = config.boot.kernelPackages.kernel;
  # The files themselves (no link to follow), for what boots the system from outside: VM run scripts, images.
  kernelFile = "${kernel}/boot/vmlinuz-${lib.removePrefix "linux-image-" kernel.pname}";
  initrdFile = "${initrd}/initrd";
  # A bootspec (RFC 0125) for the bootloaders (src/boot/loader), with the loader's settings as "rixos.loader".
  # No "toplevel" or "init": the toplevel cannot name itself; init is `<toplevel>/init`.
  bootJson = lib.writeText "boot.json" (builtins.toJSON {
    "org.nixos.bootspec.v1" = {
      system = "x86_64-linux";
      kernel = kernelFile;
      initrd = initrdFile;
      kernelParams = config.boot.kernelParams;
      label = "rixos ${config.system.stateVersion} (Linux ${lib.removePrefix "linux-image-" kernel.pname})";
    };
    "rixos.loader" = config.system.build.bootLoader;
  });
  # switch-to-configuration switch|boot|test|dry-activate, as in NixOS: moves the machine to the toplevel this
  # program is in (src/switch, run by the rixos the toplevel carries).
  switchToConfiguration = lib.writeScript "switch-to-configuration" ''
    #!${pkgs.bash}/bin/bash
    toplevel=$(${pkgs.coreutils}/bin/readlink -f "''${0%/bin/switch-to-configuration}")
    exec ${pkgs.rixos}/bin/rixos switch-to-configuration "$toplevel" "$@"
  '';
  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  checked = x:
    if failed != [ ] then throw "Failed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
    else lib.foldr (w: acc: builtins.trace "warning: ${w}" acc) x config.warnings;
in
{
  options.system.extraDependencies = lib.mkOption {
    type = lib.types.listOf lib.types.package;
    default = [ ];
    description = ''
      Store paths the system's closure holds without using them (the toplevel lists them in
      `extra-dependencies`): what a live ISO needs to build and install another system offline.'';
  };
  options.system.rebuildModules = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    default = [ ];
    internal = true;
    description = ''
      Modules (Nix expressions such as `<rixos/nixos/disk-image.nix>`) the machine was built with besides its
      configuration file: `rixos system` on the machine adds them when it rebuilds /etc/rixos/configuration.nix
      (the toplevel lists them in `rebuild-modules`).'';
  };
  config.system.build = {
    inherit etc sw kernelFile initrdFile;
    toplevel = checked (linkfarm "${config.system.name}-system-${config.networking.hostName}" ([
      { path = "etc"; target = "${etc}/"; }
      { path = "sw"; target = "${sw}"; }
      { path = "activate"; target = activate; }
      { path = "init"; target = init; }
      { path = "rixos-version"; target = builtins.toFile "rixos-version" "${config.system.name} ${config.system.stateVersion}"; }
      { path = "kernel"; target = kernelFile; }
      { path = "kernel-modules"; target = "${config.boot.modulesTree}/lib/modules"; }
      { path = "initrd"; target = initrdFile; }
      { path = "systemd"; target = "${config.systemd.package}"; }
      { path = "kernel-params"; target = builtins.toFile "kernel-params" (lib.concatStringsSep " " config.boot.kernelParams); }
      { path = "system"; target = builtins.toFile "system" "x86_64-linux"; }
      { path = "stateVersion"; target = builtins.toFile "state-version" config.system.stateVersion; }
      { path = "boot.json"; target = bootJson; }
      { path = "bin/switch-to-configuration"; target = switchToConfiguration; }
      { path = "rebuild-modules"; target = builtins.toFile "rebuild-modules" (lib.concatMapStrings (m: "${m}\n") config.system.rebuildModules); }
    ] ++ lib.optional (config.system.extraDependencies != [ ]) {
      path = "extra-dependencies";
      target = lib.writeText "extra-dependencies" (lib.concatMapStrings (d: "${d}\n") config.system.extraDependencies);
    }));
  };
}
