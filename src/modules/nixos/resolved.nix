# Name resolution. With services.resolved (the default, as on NixOS with networkd): Debian's systemd-resolved
# takes the DNS servers DHCP hands networkd (from its link state files; no D-Bus needed), plus
# networking.nameservers, and /etc/resolv.conf points at its stub resolver (127.0.0.53). Without it,
# /etc/resolv.conf lists networking.nameservers and networking.search as they are.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.resolved;
  net = config.networking;
  resolvedConf = lib.writeText "resolved.conf" (''
    [Resolve]
  '' + lib.optionalString (net.nameservers != [ ]) "DNS=${lib.concatStringsSep " " net.nameservers}\n"
    + lib.optionalString (cfg.fallbackDns != null) "FallbackDNS=${lib.concatStringsSep " " cfg.fallbackDns}\n"
    + lib.optionalString (cfg.domains != [ ]) "Domains=${lib.concatStringsSep " " cfg.domains}\n"
    + ''
    LLMNR=${cfg.llmnr}
    DNSSEC=${cfg.dnssec}
    DNSOverTLS=${cfg.dnsovertls}
  '' + cfg.extraConfig);
in
{
  options.networking.search = mkOption {
    type = types.listOf types.str;
    default = [ ];
    example = [ "example.com" "home.arpa" ];
    description = "Domains searched for host names that are not fully qualified.";
  };
  options.services.resolved = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "Whether systemd-resolved resolves names for the system (DNS servers from DHCP and networking.nameservers, a stub resolver at 127.0.0.53 in /etc/resolv.conf).";
    };
    fallbackDns = mkOption {
      type = types.nullOr (types.listOf types.str);
      default = null;
      example = [ "192.0.2.53" ];
      description = "DNS servers used when no other is known; null keeps systemd-resolved's built-in list, [ ] has none.";
    };
    domains = mkOption {
      type = types.listOf types.str;
      default = net.search;
      defaultText = lib.literalExpression "config.networking.search";
      description = "Search and routing domains (resolved.conf's Domains=).";
    };
    llmnr = mkOption {
      type = types.enum [ "true" "resolve" "false" ];
      default = "true";
      description = "Link-local multicast name resolution: answer and resolve, resolve only, or off.";
    };
    dnssec = mkOption {
      type = types.enum [ "true" "allow-downgrade" "false" ];
      default = "false";
      description = "Whether answers are validated with DNSSEC (allow-downgrade: when the server supports it).";
    };
    dnsovertls = mkOption {
      type = types.enum [ "true" "opportunistic" "false" ];
      default = "false";
      description = "Whether DNS queries go over TLS.";
    };
    extraConfig = mkOption {
      type = types.lines;
      default = "";
      description = "More lines of resolved.conf's [Resolve] section.";
    };
  };

  config = lib.mkMerge [
    (lib.mkIf cfg.enable {
      environment.etc."systemd/resolved.conf".source = resolvedConf;
      environment.etc."resolv.conf".source = "/run/systemd/resolve/stub-resolv.conf";
      users.users.systemd-resolve = { isSystemUser = true; group = "systemd-resolve"; description = "systemd Resolver"; };
      users.groups.systemd-resolve = { };
      # Debian's unit, without its D-Bus name (the system has no bus; resolved works without one).
      systemd.services.systemd-resolved = {
        description = "Network Name Resolution";
        wantedBy = [ "sysinit.target" ];
        after = [ "systemd-networkd.service" ];
        before = [ "network.target" "nss-lookup.target" "shutdown.target" ];
        wants = [ "nss-lookup.target" ];
        unitConfig = { DefaultDependencies = false; Conflicts = "shutdown.target"; };
        restartTriggers = [ resolvedConf ];
        serviceConfig = {
          Type = "notify";
          ExecStart = "!!${pkgs.systemd-resolved}/lib/systemd/systemd-resolved";
          User = "systemd-resolve";
          AmbientCapabilities = "CAP_SETPCAP CAP_NET_RAW CAP_NET_BIND_SERVICE";
          CapabilityBoundingSet = "CAP_SETPCAP CAP_NET_RAW CAP_NET_BIND_SERVICE";
          RuntimeDirectory = "systemd/resolve";
          RuntimeDirectoryPreserve = "yes";
          Restart = "always";
          RestartSec = "0";
          WatchdogSec = "3min";
        };
      };
    })
    (lib.mkIf (!cfg.enable) {
      environment.etc."resolv.conf".text = lib.concatMapStrings (n: "nameserver ${n}\n") net.nameservers
        + lib.optionalString (net.search != [ ]) "search ${lib.concatStringsSep " " net.search}\n";
    })
  ];
}
