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
    restartTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; description = "When any of these change, switching to the new system restarts the unit (written as X-Restart-Triggers, as NixOS does: the unit file changes with them)."; };
    reloadTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; description = "When any of these change, and nothing else of the unit, switching to the new system reloads the unit instead of restarting it (X-Reload-Triggers)."; };
  };
  serviceOptions = unitOptions // {
    serviceConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Service] settings."; };
    script = mkOption { type = types.lines; default = ""; description = "A shell script run as the service's ExecStart."; };
    environment = mkOption { type = types.attrsOf types.str; default = { }; description = "Environment variables."; };
    path = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages whose bin/ is on PATH."; };
    reloadIfChanged = mkOption { type = types.bool; default = false; description = "Whether switching to a new system reloads the service (ExecReload) instead of restarting it when its unit changed (X-ReloadIfChanged, as NixOS)."; };
    restartIfChanged = mkOption { type = types.bool; default = true; description = "Whether switching to a new system restarts the service when its unit changed; false leaves it running as it is (X-RestartIfChanged=false)."; };
    stopIfChanged = mkOption { type = types.bool; default = true; description = "Whether a changed service is stopped before the new system is activated and started after (so it never runs against the old /etc); false restarts it after activation in one step (X-StopIfChanged=false), as sshd wants."; };
  };
  value = v: if lib.isBool v then (if v then "yes" else "no") else toString v;
  section = name: attrs: "[${name}]\n" + lib.concatStrings (lib.mapAttrsToList (k: v:
    lib.concatMapStrings (x: "${k}=${value x}\n") (lib.toList v)) (lib.filterAttrs (_: v: v != null && v != [ ]) attrs));
  unitSection = u: section "Unit" ({ Description = u.description; After = u.after; Before = u.before; Wants = u.wants; Requires = u.requires; }
    // lib.optionalAttrs (u.restartTriggers != [ ]) { X-Restart-Triggers = toString (map (t: if lib.isPath t then "${t}" else toString t) u.restartTriggers); }
    // lib.optionalAttrs (u.reloadTriggers != [ ]) { X-Reload-Triggers = toString (map (t: if lib.isPath t then "${t}" else toString t) u.reloadTriggers); }
    // u.unitConfig);
  installSection = u: lib.optionalString (u.wantedBy != [ ]) (section "Install" { WantedBy = u.wantedBy; });
  serviceText = name: s:
    let
      script = lib.writeScript "${name}-start" "#!${pkgs.bash}/bin/bash\nset -e\n${s.script}";
      env = lib.mapAttrsToList (k: v: "${k}=${v}") (s.environment // lib.optionalAttrs (s.path != [ ]) {
        PATH = lib.concatMapStringsSep ":" (p: "${p}/bin:${p}/sbin") s.path;
      });
      serviceConfig = lib.optionalAttrs (s.script != "") { ExecStart = script; } // lib.optionalAttrs (env != [ ]) { Environment = map (e: "\"${e}\"") env; }
        // lib.optionalAttrs s.reloadIfChanged { X-ReloadIfChanged = "true"; }
        // lib.optionalAttrs (!s.restartIfChanged) { X-RestartIfChanged = "false"; }
        // lib.optionalAttrs (!s.stopIfChanged) { X-StopIfChanged = "false"; } // s.serviceConfig;
    in
    unitSection s + "\n" + section "Service" serviceConfig + "\n" + installSection s;
  cfg = config.systemd;
  # PID 1, its units, generators and tmpfiles: all from systemd.package.
  systemd = cfg.package;
  udev = pkgs.udev;
  # Where programs named in upstream units and rules are found, in order.
  search = [ systemd udev pkgs.util-linux pkgs.mount pkgs.kmod pkgs.coreutils pkgs.bash ];

  # Debian's units rixos boots with: the core targets, journald, udev, tmpfiles, sysctl, modules, shutdown.
  # (Mounts, logind and the units of absent features are left out; file systems come from the configuration.)
  upstreamSystemd = [
    "basic.target" "sysinit.target" "sockets.target" "timers.target" "paths.target" "slices.target"
    "local-fs.target" "local-fs-pre.target" "remote-fs.target" "remote-fs-pre.target" "swap.target"
    "network.target" "network-pre.target" "network-online.target" "nss-lookup.target" "nss-user-lookup.target"
    "multi-user.target" "getty.target" "getty-pre.target" "emergency.target" "rescue.target" "graphical.target"
    "shutdown.target" "umount.target" "final.target" "poweroff.target" "reboot.target" "halt.target"
    "kexec.target" "ctrl-alt-del.target" "exit.target" "time-set.target" "time-sync.target" "sigpwr.target"
    "cryptsetup.target" "veritysetup.target" "integritysetup.target" "first-boot-complete.target"
    "emergency.service" "rescue.service" "systemd-poweroff.service" "systemd-reboot.service" "systemd-halt.service"
    "systemd-exit.service" "systemd-kexec.service"
    "systemd-journald.service" "systemd-journald.socket" "systemd-journald-dev-log.socket"
    "systemd-journald-audit.socket" "systemd-journal-flush.service"
    "systemd-tmpfiles-setup.service" "systemd-tmpfiles-setup-dev.service" "systemd-tmpfiles-clean.service"
    "systemd-tmpfiles-clean.timer" "systemd-sysctl.service" "systemd-modules-load.service"
    "kmod-static-nodes.service" "modprobe@.service" "systemd-random-seed.service" "systemd-update-utmp.service"
    "systemd-user-sessions.service" "systemd-ask-password-console.path" "systemd-ask-password-console.service"
    "systemd-ask-password-wall.path" "systemd-ask-password-wall.service"
    "user.slice" "machine.slice" "user-runtime-dir@.service" "user@.service"
  ] ++ lib.optionals config.networking.useDHCP [ "systemd-networkd.service" "systemd-networkd.socket" ];
  upstreamUdev = [ "systemd-udevd.service" "systemd-udevd-control.socket" "systemd-udevd-kernel.socket" "systemd-udev-trigger.service" ];
  upstreamWants = {
    "sysinit.target.wants" = [
      "systemd-journald.service" "systemd-journal-flush.service" "systemd-tmpfiles-setup.service"
      "systemd-tmpfiles-setup-dev.service" "systemd-sysctl.service" "systemd-modules-load.service"
      "kmod-static-nodes.service" "systemd-random-seed.service" "systemd-update-utmp.service"
      "systemd-ask-password-console.path" "systemd-udevd.service" "systemd-udev-trigger.service"
    ];
    "sockets.target.wants" = [ "systemd-journald.socket" "systemd-journald-dev-log.socket" "systemd-udevd-control.socket" "systemd-udevd-kernel.socket" ]
      ++ lib.optional config.networking.useDHCP "systemd-networkd.socket";
    "timers.target.wants" = [ "systemd-tmpfiles-clean.timer" ];
    "multi-user.target.wants" = [ "getty.target" "systemd-user-sessions.service" "systemd-ask-password-wall.path" ]
      ++ lib.optional config.networking.useDHCP "systemd-networkd.service";
    "getty.target.wants" = [ "getty@tty1.service" ];
  };

  # Generated units, one text file each.
  unitFile = kind: name: text: lib.writeText "unit-${lib.replaceStrings [ "@" ] [ "-" ] name}.${kind}" text;
  generated = kind: attrs: render: lib.mapAttrsToList (n: u: { name = "${n}.${kind}"; source = unitFile kind n (render n u); unit = u; })
    (lib.filterAttrs (_: u: u.enable) attrs);
  socketText = n: s: unitSection s + "\n" + section "Socket" ({ ListenStream = s.listenStreams; } // s.socketConfig) + "\n" + installSection s;
  timerText = n: t: unitSection t + "\n" + section "Timer" t.timerConfig + "\n" + installSection t;
  targetText = n: t: unitSection t + "\n" + installSection t;
  ownUnits = generated "service" cfg.services serviceText ++ generated "socket" cfg.sockets socketText
    ++ generated "timer" cfg.timers timerText ++ generated "target" cfg.targets targetText
    ++ generated "path" cfg.paths (n: p: unitSection p + "\n" + section "Path" p.pathConfig + "\n" + installSection p);
  ownWants = lib.concatMap (u: map (t: { dir = "${t}.wants"; unit = u.name; }) u.unit.wantedBy) ownUnits;
  upstreamNames = upstreamSystemd ++ upstreamUdev;
  # A generated unit replaces an upstream one of the same name.
  ownNames = map (u: u.name) ownUnits;
  unitLines = lib.concatStrings (
    map (n: "${n}\t${systemd}/lib/systemd/system/${n}\n") (lib.filter (n: !builtins.elem n ownNames) upstreamSystemd)
    ++ map (n: "${n}\t${udev}/lib/systemd/system/${n}\n") (lib.filter (n: !builtins.elem n ownNames) upstreamUdev)
    ++ map (u: "${u.name}\t${u.source}\n") ownUnits);
  wantsLinks = lib.concatStrings (
    lib.concatLists (lib.mapAttrsToList (dir: units: map (u: "${dir}/${u}\t../${templateOf u}\n") units) upstreamWants)
    ++ map (w: "${w.dir}/${w.unit}\t../${templateOf w.unit}\n") ownWants
    ++ [ "default.target\t${cfg.defaultUnit}\n" ]
    ++ map (u: "${u}\t/dev/null\n") cfg.maskedUnits);
  # `getty@tty1.service` links to the template `getty@.service`.
  templateOf = u: let m = builtins.match "([^@]+@)[^.]+(\\..+)" u; in if m == null then u else lib.concatStrings m;
  unitTree = derivation {
    name = "system-units";
    system = "x86_64-linux";
    builder = "builtin:unit-tree";
    units = unitLines;
    links = wantsLinks;
    search = search;
  };
  # Debian's rules for devices a server or VM has (named here: listing the package's directory would need it
  # built while evaluating).
  udevRuleNames = [
    "50-firmware.rules" "50-udev-default.rules" "60-autosuspend.rules" "60-block.rules" "60-cdrom_id.rules"
    "60-drm.rules" "60-evdev.rules" "60-input-id.rules" "60-persistent-input.rules" "60-persistent-storage.rules"
    "60-persistent-storage-tape.rules" "60-serial.rules" "64-btrfs.rules" "70-memory.rules" "70-mouse.rules"
    "70-power-switch.rules" "70-touchpad.rules" "73-special-net-names.rules" "75-net-description.rules"
    "80-drivers.rules" "80-net-setup-link.rules"
  ];
  udevRules = derivation {
    name = "udev-rules";
    system = "x86_64-linux";
    builder = "builtin:unit-tree";
    kind = "udev-rules";
    units = lib.concatMapStrings (r: "${r}\t${udev}/lib/udev/rules.d/${r}\n") udevRuleNames
      + lib.concatMapStrings (r: "${r}\t${systemd}/lib/udev/rules.d/${r}\n") [ "99-systemd.rules" ];
    search = search;
  };
in
{
  options.systemd = {
    services = mkOption { type = types.attrsOf (types.submodule { options = serviceOptions; }); default = { }; description = "Services, by name."; };
    sockets = mkOption { type = types.attrsOf (types.submodule { options = unitOptions // { listenStreams = mkOption { type = types.listOf types.str; default = [ ]; description = "Addresses to listen on."; }; socketConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Socket] settings."; }; }; }); default = { }; description = "Sockets, by name."; };
    timers = mkOption { type = types.attrsOf (types.submodule { options = unitOptions // { timerConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Timer] settings."; }; }; }); default = { }; description = "Timers, by name."; };
    paths = mkOption { type = types.attrsOf (types.submodule { options = unitOptions // { pathConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Path] settings."; }; }; }); default = { }; description = "Path units, by name."; };
    targets = mkOption { type = types.attrsOf (types.submodule { options = unitOptions; }); default = { }; description = "Targets, by name."; };
    tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; description = "tmpfiles.d(5) lines."; };
  };
  options.systemd.defaultUnit = mkOption { type = types.str; default = "multi-user.target"; description = "The unit systemd starts at boot."; };
  options.systemd.maskedUnits = mkOption { type = types.listOf types.str; default = [ ]; description = "Units that are never started (linked to /dev/null)."; };
  options.systemd.package = mkOption { type = types.package; default = pkgs.systemd; defaultText = lib.literalExpression "pkgs.systemd"; description = "systemd: PID 1 of the system, its units, generators, tmpfiles.d files and systemctl."; };
  options.systemd.build.units = mkOption { type = types.package; internal = true; description = "The unit directory (`/etc/systemd/system`)."; };
  config = {
    systemd.build.units = unitTree;
    # poweroff, reboot and halt run systemctl's verbs. Called by those names, systemctl would first ask logind
    # over D-Bus, which this system does not run, and print "Failed to connect to bus" before falling back.
    # shutdown (with its time argument) stays systemctl under that name, as Debian's systemd-sysv links it.
    environment.systemPackages = [
      (derivation {
        name = "systemd-power-commands";
        system = "x86_64-linux";
        builder = "builtin:linkfarm";
        links = lib.concatMapStrings (verb: "bin/${verb}\t${lib.writeScript verb ''
          #!${pkgs.bash}/bin/bash
          # ${verb}(8) as `systemctl ${verb}`; -f acts at once, as the classic command does.
          # Otherwise it starts the target as `systemctl ${verb}` does once logind is found missing.
          verb=${verb} force=""
          for a in "$@"; do
            case $a in
              -f|--force) force=1 ;;
              --no-wall) ;;
              -p|--poweroff) verb=poweroff ;;
              --reboot) verb=reboot ;;
              --halt) verb=halt ;;
              *) echo "${verb}: unsupported option $a (see systemctl --help)" >&2; exit 1 ;;
            esac
          done
          if [ -n "$force" ]; then exec ${systemd}/bin/systemctl --force --force "$verb"; fi
          exec ${systemd}/bin/systemctl --no-ask-password --no-block start --job-mode=replace-irreversibly "$verb.target"
        ''}\n") [ "poweroff" "reboot" "halt" ]
          + "bin/shutdown\t${systemd}/bin/systemctl\n";
      })
    ];
    environment.etc = {
      "systemd/system".source = unitTree;
      "udev/rules.d".source = udevRules;
      # Generators systemd runs at boot: serial gettys for console= (getty); filesystems.nix adds fstab's.
      "systemd/system-generators/systemd-getty-generator".source = "${systemd}/lib/systemd/system-generators/systemd-getty-generator";
      "systemd/system.conf".text = ''
        [Manager]
        DefaultEnvironment="PATH=/run/wrappers/bin:/run/current-system/sw/bin:/run/current-system/sw/sbin"
      '';
      "os-release".text = ''
        NAME=rixos
        ID=rixos
        ID_LIKE=nixos
        VERSION_ID="${config.system.stateVersion}"
        PRETTY_NAME="rixos ${config.system.stateVersion}"
        HOME_URL="https://rixos.invalid/"
      '';
      "machine-info".text = "";
    } // lib.listToAttrs (map (f: lib.nameValuePair "tmpfiles.d/${f}" { source = "${systemd}/lib/tmpfiles.d/${f}"; })
      [ "tmp.conf" "var.conf" "home.conf" "systemd.conf" "systemd-tmp.conf" "journal-nocow.conf" "legacy.conf" "debian.conf" "x11.conf" ])
    // lib.optionalAttrs config.networking.useDHCP {
      "tmpfiles.d/systemd-network.conf".source = "${systemd}/lib/tmpfiles.d/systemd-network.conf";
    } // lib.optionalAttrs (cfg.tmpfiles.rules != [ ]) { "tmpfiles.d/rixos.conf".text = lib.concatLines cfg.tmpfiles.rules; };
    # Groups udev rules and tmpfiles name: Debian's static ids where Debian has them, the others chosen.
    users.groups = {
      adm.gid = 4; tty.gid = 5; disk.gid = 6; lp.gid = 7; kmem.gid = 15; dialout.gid = 20; cdrom.gid = 24;
      floppy.gid = 25; tape.gid = 26; audio.gid = 29; utmp.gid = 43; video.gid = 44;
      systemd-journal = { }; input = { }; kvm = { }; render = { }; sgx = { };
    };
  };
}
