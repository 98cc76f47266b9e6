{ config, lib, ... }:
let
  inherit (lib) mkOption mkEnableOption types;
  cfg = config.networking;
in
{
  options.networking = {
    hostName = mkOption {
      type = types.str;
      default = "rixos";
      description = "The name of the machine.";
    };
    domain = mkOption { type = types.nullOr types.str; default = null; description = "The domain of the machine."; };
    useDHCP = mkOption { type = types.bool; default = true; description = "Whether to configure every interface with DHCP."; };
    interfaces = mkOption {
      type = types.attrsOf (types.submodule {
        options.useDHCP = mkOption { type = types.nullOr types.bool; default = null; description = "Whether to use DHCP on this interface."; };
        options.ipv4.addresses = mkOption {
          type = types.listOf (types.submodule {
            options.address = mkOption { type = types.str; description = "The address."; };
            options.prefixLength = mkOption { type = types.ints.between 0 32; description = "The prefix length."; };
          });
          default = [ ];
          description = "Static IPv4 addresses.";
        };
      });
      default = { };
      description = "Interfaces, by name.";
    };
    nameservers = mkOption { type = types.listOf types.str; default = [ ]; description = "DNS servers."; };
  };
  config = {
    assertions = [{
      assertion = builtins.match "[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?" cfg.hostName != null;
      message = "networking.hostName `${cfg.hostName}' is not a valid host name (letters, digits and '-', at most 63).";
    }];
    # DHCP through systemd-networkd: every wired interface, or the ones that ask for it.
    environment.etc = lib.optionalAttrs cfg.useDHCP {
      "systemd/network/99-dhcp.network".text = ''
        [Match]
        Name=en* eth*
        Type=ether

        [Network]
        DHCP=yes
      '';
    } // {
      hostname.text = cfg.hostName + "\n";
      hosts.text = "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 ${cfg.hostName}${lib.optionalString (cfg.domain != null) " ${cfg.hostName}.${cfg.domain}"}\n";
    } // lib.mapAttrs' (name: i: lib.nameValuePair "systemd/network/40-${name}.network" {
      text = "[Match]\nName=${name}\n\n[Network]\n"
        + lib.optionalString (i.useDHCP == true || (i.useDHCP == null && cfg.useDHCP)) "DHCP=yes\n"
        + lib.concatMapStrings (a: "Address=${a.address}/${toString a.prefixLength}\n") i.ipv4.addresses
        + lib.concatMapStrings (n: "DNS=${n}\n") cfg.nameservers;
    }) cfg.interfaces;
    users.users.systemd-network = lib.mkIf cfg.useDHCP { isSystemUser = true; group = "systemd-network"; description = "systemd Network Management"; };
    users.groups.systemd-network = lib.mkIf cfg.useDHCP { };
  };
}
