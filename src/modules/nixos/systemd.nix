{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  unitOptions = {
    enable = mkOption { type = types.bool; default = true; description = "Whether the unit is part of the system."; };
    description = mkOption { type = types.str; default = ""; description = "The unit's description."; };
    wantedBy = mkOption { type = types.listOf types.str; default = [ ]; description = "Units that want this one."; };
    after = mkOption { type = types.listOf types.str; default = [ ]; description = "Units this one starts after."; };
    before = mkOption { type = types.listOf types.str; default = [ ]; description = "Units this one starts before."; };
    wants = mkOption { type = types.listOf types.str; default = [ ]; description = "Units this one wants."; };
    requires = mkOption { type = types.listOf types.str; default = [ ]; description = "Units this one requires."; };
    unitConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "More [Unit] settings."; };
  };
  serviceOptions = unitOptions // {
    serviceConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Service] settings."; };
    script = mkOption { type = types.lines; default = ""; description = "A shell script run as the service's ExecStart."; };
    environment = mkOption { type = types.attrsOf types.str; default = { }; description = "Environment variables."; };
    path = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages whose bin/ is on PATH."; };
  };
  value = v: if lib.isBool v then (if v then "yes" else "no") else toString v;
  section = name: attrs: "[${name}]\n" + lib.concatStrings (lib.mapAttrsToList (k: v:
    lib.concatMapStrings (x: "${k}=${value x}\n") (lib.toList v)) (lib.filterAttrs (_: v: v != null && v != [ ]) attrs));
  unitSection = u: section "Unit" ({ Description = u.description; After = u.after; Before = u.before; Wants = u.wants; Requires = u.requires; } // u.unitConfig);
  installSection = u: lib.optionalString (u.wantedBy != [ ]) (section "Install" { WantedBy = u.wantedBy; });
  serviceText = name: s:
    let
      script = lib.writeScript "${name}-start" "#!${pkgs.bash}/bin/bash\nset -e\n${s.script}";
      env = lib.mapAttrsToList (k: v: "${k}=${v}") (s.environment // lib.optionalAttrs (s.path != [ ]) {
        PATH = lib.concatMapStringsSep ":" (p: "${p}/bin:${p}/sbin") s.path;
      });
      serviceConfig = lib.optionalAttrs (s.script != "") { ExecStart = script; } // lib.optionalAttrs (env != [ ]) { Environment = map (e: "\"${e}\"") env; } // s.serviceConfig;
    in
    unitSection s + "\n" + section "Service" serviceConfig + "\n" + installSection s;
  units = kind: attrs: render: lib.mapAttrs' (n: u: lib.nameValuePair "systemd/system/${n}.${kind}" { text = render n u; })
    (lib.filterAttrs (_: u: u.enable) attrs);
  cfg = config.systemd;
in
{
  options.systemd = {
    services = mkOption { type = types.attrsOf (types.submodule { options = serviceOptions; }); default = { }; description = "Services, by name."; };
    sockets = mkOption { type = types.attrsOf (types.submodule { options = unitOptions // { listenStreams = mkOption { type = types.listOf types.str; default = [ ]; description = "Addresses to listen on."; }; socketConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Socket] settings."; }; }; }); default = { }; description = "Sockets, by name."; };
    timers = mkOption { type = types.attrsOf (types.submodule { options = unitOptions // { timerConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Timer] settings."; }; }; }); default = { }; description = "Timers, by name."; };
    targets = mkOption { type = types.attrsOf (types.submodule { options = unitOptions; }); default = { }; description = "Targets, by name."; };
    tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; description = "tmpfiles.d(5) lines."; };
  };
  config.environment.etc =
    units "service" cfg.services serviceText
    // units "socket" cfg.sockets (n: s: unitSection s + "\n" + section "Socket" ({ ListenStream = s.listenStreams; } // s.socketConfig) + "\n" + installSection s)
    // units "timer" cfg.timers (n: t: unitSection t + "\n" + section "Timer" t.timerConfig + "\n" + installSection t)
    // units "target" cfg.targets (n: t: unitSection t + "\n" + installSection t)
    // lib.optionalAttrs (cfg.tmpfiles.rules != [ ]) { "tmpfiles.d/rixos.conf".text = lib.concatLines cfg.tmpfiles.rules; };
}
