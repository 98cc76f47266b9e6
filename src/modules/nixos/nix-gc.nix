# nix.gc: `rixos gc` on a schedule, against the machine's own store (`--store /`), with the system's rixos.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.nix.gc;
in
{
  options.nix.gc = {
    automatic = mkOption { type = types.bool; default = false; description = "Whether to collect garbage on a schedule."; };
    dates = mkOption { type = types.str; default = "03:15"; description = "When, as a systemd calendar event."; };
    options = mkOption { type = types.str; default = ""; example = "--delete-older-than 30d"; description = "Options for `rixos gc`."; };
    persistent = mkOption { type = types.bool; default = true; description = "Whether a run missed while the machine was off happens at the next boot (the timer's Persistent=)."; };
    randomizedDelaySec = mkOption { type = types.str; default = "0"; example = "45min"; description = "A random delay of up to this much before each run, as a systemd time span (the timer's RandomizedDelaySec=)."; };
  };
  config = lib.mkIf cfg.automatic {
    systemd.services.rixos-gc = {
      description = "Garbage collection of the store";
      script = "exec ${pkgs.rixos}/bin/rixos --store / gc ${cfg.options}";
      serviceConfig.Type = "oneshot";
    };
    systemd.timers.rixos-gc = {
      description = "Garbage collection of the store, on a schedule";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.dates;
        Persistent = cfg.persistent;
        RandomizedDelaySec = cfg.randomizedDelaySec;
        Unit = "rixos-gc.service";
      };
    };
  };
}
