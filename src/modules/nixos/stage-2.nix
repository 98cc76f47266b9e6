# Stage 2: the toplevel's `init` activates the generation (atomic /etc, users, /run/current-system, /bin/sh and
# /usr/bin/env, the few compatibility links systemd needs) and then becomes systemd, from the store.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.system.activationScripts;
  # Fragments in dependency order (each after its `deps`), then by name.
  ordered =
    let
      names = lib.attrNames cfg;
      depsOf = n: let s = cfg.${n}; in if lib.isString s then [ ] else s.deps;
      visit = acc: n:
        if builtins.elem n acc.seen then acc
        else let after = lib.foldl' visit (acc // { seen = acc.seen ++ [ n ]; }) (lib.filter (d: cfg ? ${d}) (depsOf n));
        in after // { order = after.order ++ [ n ]; };
    in (lib.foldl' visit { seen = [ ]; order = [ ]; } names).order;
  text = n: let s = cfg.${n}; in if lib.isString s then s else s.text;
  path = lib.makeBinPath [ pkgs.coreutils pkgs.findutils pkgs.gnugrep pkgs.gnused pkgs.util-linux ];
  # Files copied into /etc instead of linked (a mode other than `symlink`): `MODE PATH` lines.
  copied = lib.filter (e: e.mode != "symlink" && (e.text != null || e.source != null)) (lib.attrValues config.environment.etc);
  etcModes = builtins.toFile "etc-modes" (lib.concatMapStrings (e: "${e.mode} ${e.target}\n") copied);
in
{
  options.system.compatibilityLinks = mkOption {
    type = types.attrsOf types.str;
    default = { };
    description = "Links outside the store the system keeps because a program insists on its path, with their targets (listed in ARCHITECTURE.md).";
  };
  config = {
    # The exceptions to "nothing under /lib, /usr or /bin but /bin/sh and /usr/bin/env".
    system.compatibilityLinks = {
      # kmod (modprobe, and udev loading drivers) reads modules from this fixed path only.
      "/lib/modules" = "/run/booted-system/kernel-modules";
      # systemd (PID 1) executes this compiled-in path to finish every shutdown and reboot.
      "/lib/systemd/systemd-shutdown" = "${config.systemd.package}/lib/systemd/systemd-shutdown";
      # systemd runs these compiled-in paths for every mount unit (file systems besides the root).
      "/bin/mount" = "${pkgs.mount}/bin/mount";
      "/bin/umount" = "${pkgs.mount}/bin/umount";
      # systemd's emergency and rescue shells execute this compiled-in path to ask for root's password.
      "/sbin/sulogin" = "${pkgs.util-linux}/sbin/sulogin";
    };
    system.activationScripts = {
      specialfs.text = ''
        mkdir -p /run/rixos /var /tmp /etc /root /home /var/lib /var/log /var/cache /var/empty
        chmod 1777 /tmp
        chmod 0700 /root
        chmod 0555 /var/empty
      '';
      etc = {
        deps = [ "specialfs" ];
        text = ''
          # /etc/static points at this generation's etc; /etc's entries link through it, so replacing that one
          # link (a rename) moves all of /etc to the new generation at once. Files with a mode are copied.
          etcStatic=$(readlink -f "$systemConfig/etc")
          ln -sfn "$etcStatic" /etc/.static.tmp
          mv -T /etc/.static.tmp /etc/static
          # Only bash builtins per entry where possible: each program started costs much under emulation.
          declare -A mode=() ours=()
          while read -r m p; do mode[$p]=$m; done < ${etcModes}
          if [ -f /etc/.rixos-clean ]; then while read -r p; do ours[$p]=1; done < /etc/.rixos-clean; fi
          cd /etc/static
          find . -mindepth 1 \( -type l -o -type f \) -printf '%P\n' | sort > /run/rixos/etc-entries.new
          while read -r p; do
            target=/etc/$p
            case $p in */*) [ -d "/etc/''${p%/*}" ] || mkdir -p "/etc/''${p%/*}" ;; esac
            if [ -n "''${mode[$p]:-}" ]; then
              install -m "''${mode[$p]}" "/etc/static/$p" "$target.tmp" && mv -f "$target.tmp" "$target"
              continue
            fi
            # A link to /etc/static/... stays right across generations: /etc/static itself moved.
            if [ -L "$target" ] && [ "$target" -ef "/etc/static/$p" ]; then continue; fi
            if [ -e "$target" ] || [ -L "$target" ]; then
              if [ ! -L "$target" ] && [ -z "''${ours[$p]:-}" ]; then
                echo "activation: $target was not made by rixos; keeping it as $target.rixos-old" >&2
                mv -f "$target" "$target.rixos-old"
              fi
              ln -sfn "/etc/static/$p" "$target.tmp" && mv -Tf "$target.tmp" "$target"
            else
              ln -s "/etc/static/$p" "$target"
            fi
          done < /run/rixos/etc-entries.new
          # Entries of the previous generation that this one no longer has.
          if [ -f /etc/.rixos-clean ]; then
            comm -23 /etc/.rixos-clean /run/rixos/etc-entries.new | while read -r p; do
              if [ -L "/etc/$p" ] || [ -f "/etc/$p" ]; then rm -f "/etc/$p"; fi
            done
          fi
          mv -f /run/rixos/etc-entries.new /etc/.rixos-clean
          cd /
        '';
      };
      links = {
        deps = [ "etc" ];
        text = ''
          # /bin/sh and /usr/bin/env, which scripts everywhere assume, and the listed compatibility links.
          link() {
            if [ -L "$2" ] && [ "$2" -ef "$1" ]; then return; fi
            [ -d "''${2%/*}" ] || mkdir -p "''${2%/*}"
            ln -sfn "$1" "$2.tmp" && mv -Tf "$2.tmp" "$2"
          }
          link ${pkgs.bash}/bin/sh /bin/sh
          link ${pkgs.coreutils}/bin/env /usr/bin/env
          ${lib.concatStrings (lib.mapAttrsToList (p: t: "link ${t} ${p}\n") config.system.compatibilityLinks)}
          link "$systemConfig" /run/current-system
        '';
      };
      # The kernel runs this to load modules on demand (a file system's, say); its default, /sbin/modprobe,
      # does not exist here.
      modprobe.text = "echo ${pkgs.kmod}/sbin/modprobe > /proc/sys/kernel/modprobe\n";
      hostname = {
        deps = [ "etc" ];
        text = "echo ${config.networking.hostName} > /proc/sys/kernel/hostname\n";
      };
    };

    system.build.activate = lib.writeScript "activate" (''
      #!${pkgs.bash}/bin/bash
      # Activation of this system generation: at boot (stage 2 runs it before systemd) and on switch.
      set -e
      systemConfig=$(readlink -f "''${0%/activate}")
      export PATH=${path}
      umask 022
    '' + lib.concatMapStrings (n: "\n# ${n}\n${text n}\n") ordered);

    system.build.init = lib.writeScript "init" ''
      #!${pkgs.bash}/bin/bash
      # Stage 2, run by stage 1 as init=/nix/store/...-system/init: the toplevel is where this script is.
      systemConfig=$(${pkgs.coreutils}/bin/readlink -f "''${0%/init}")
      export PATH=${path}
      # The store is read-only to everything but rixos, which writes it in a mount namespace of its own (as
      # nix-daemon does): systemd would otherwise write enable links into unit directories of the store.
      if ! [[ "$(findmnt --noheadings --output OPTIONS /nix/store)" =~ (^|,)ro(,|$) ]]; then
        ${pkgs.mount}/bin/mount --bind /nix/store /nix/store && ${pkgs.mount}/bin/mount -o remount,ro,bind /nix/store
      fi
      echo "rixos stage 2: activating $systemConfig"
      "$systemConfig/activate" || echo "rixos stage 2: activation failed; starting systemd anyway" >&2
      # The generation booted stays reachable while others are switched to.
      ln -sfn "$systemConfig" /run/booted-system
      exec ${config.systemd.package}/lib/systemd/systemd "$@"
    '';
  };
}
