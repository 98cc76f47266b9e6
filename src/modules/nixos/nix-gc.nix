{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.nix.gc;
in
{
  options.nix.gc = {
    automatic = mkOption { type = types.bool; default = false; description = "Whether to collect garbage on a schedule."; };
    dates = mkOption { type = types.str; default = "03:15"; description = "When, as a systemd calendar event."; };
    options = mkOption { type = types.str; default = ""; example = "--delete-older-than 30d"; description = "Options for `rixos gc`."; };
  };
  config = lib.mkIf cfg.automatic {
    systemd.services.rixos-gc = {
      description = "Garbage collection of the store";
      script = "exec /run/current-system/sw/bin/rixos gc ${cfg.options}";
      serviceConfig.Type = "oneshot";
    };
    systemd.timers.rixos-gc = {
      description = "Garbage collection of the store, on a schedule";
      wantedBy = [ "timers.target" ];
      timerConfig = { OnCalendar = cfg.dates; Persistent = true; Unit = "rixos-gc.service"; };
    };
  };
}
