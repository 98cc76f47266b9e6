{ config, lib, pkgs, options, ... }:
let
  inherit (lib) mkOption types;
  zones = import ./zones.nix;
  tz = config.time.timeZone;
in
{
  options = {
    time.timeZone = mkOption { type = types.nullOr types.str; default = null; example = "Europe/Amsterdam"; description = "The time zone, as a tzdata name."; };
    i18n.defaultLocale = mkOption { type = types.str; default = "en_US.UTF-8"; description = "The default locale."; };
    # The keyboard's services.xserver options are console.nix's.
    services.xserver.enable = mkOption { type = types.bool; default = false; description = "Whether to run the X server. rixos has no X server yet: `true` is refused."; };
  };
  config = {
    assertions = [{
      assertion = !config.services.xserver.enable;
      message = "services.xserver.enable is set (in ${lib.concatStringsSep ", " options.services.xserver.enable.files}), but rixos has no X server yet: remove it, or set it to false.";
    } {
      assertion = tz == null || builtins.elem tz zones;
      message = "time.timeZone `${toString tz}' is not a time zone tzdata knows${let n = builtins.rixosNearest (toString tz) zones; in if n != null then "; did you mean `${n}'?" else "."}";
    }];
    environment.etc = lib.optionalAttrs (tz != null) {
      localtime.source = "${pkgs.tzdata}/share/zoneinfo/${tz}";
      timezone.text = tz + "\n";
    } // {
      "locale.conf".text = "LANG=${config.i18n.defaultLocale}\n";
    };
  };
}
