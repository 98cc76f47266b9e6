# The firewall, as NixOS's nftables backend: a stateful `inet` table whose input chain drops what no option
# allows, loaded from a ruleset file in the store by firewall.service before the network comes up.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.networking.firewall;
  table = "rixos-fw";

  canonicalizePortList = ports: lib.unique (builtins.sort builtins.lessThan ports);
  portRange = types.submodule {
    options.from = mkOption { type = types.port; description = "The first port of the range."; };
    options.to = mkOption { type = types.port; description = "The last port of the range (included)."; };
  };
  # The options that open ports, at the top and for each interface.
  portOptions = {
    allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
      apply = canonicalizePortList;
      example = [ 22 80 ];
      description = "List of TCP ports on which incoming connections are accepted.";
    };
    allowedTCPPortRanges = mkOption {
      type = types.listOf portRange;
      default = [ ];
      example = [ { from = 8999; to = 9003; } ];
      description = "Ranges of TCP ports on which incoming connections are accepted.";
    };
    allowedUDPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
      apply = canonicalizePortList;
      example = [ 53 ];
      description = "List of UDP ports on which incoming packets are accepted.";
    };
    allowedUDPPortRanges = mkOption {
      type = types.listOf portRange;
      default = [ ];
      example = [ { from = 60000; to = 61000; } ];
      description = "Ranges of UDP ports on which incoming packets are accepted.";
    };
  };

  quote = s: "\"${s}\"";
  portSet = ports: ranges:
    lib.concatStringsSep ", " (map toString ports ++ map (r: "${toString r.from}-${toString r.to}") ranges);
  # `accept` rules for the ports one set of port options opens, on one interface or (null) on all.
  allowPorts = iface: p:
    let
      only = lib.optionalString (iface != null) "iifname ${quote iface} ";
      tcp = portSet p.allowedTCPPorts p.allowedTCPPortRanges;
      udp = portSet p.allowedUDPPorts p.allowedUDPPortRanges;
    in
    lib.optional (tcp != "") "${only}tcp dport { ${tcp} } accept"
    ++ lib.optional (udp != "") "${only}udp dport { ${udp} } accept";
  trusted = lib.unique ([ "lo" ] ++ cfg.trustedInterfaces);
  limit = lib.optionalString (cfg.pingLimit != null) "limit rate ${cfg.pingLimit} ";
  textLines = text: lib.filter (l: l != "") (lib.splitString "\n" text);
  chain = name: lines: "  chain ${name} {\n" + lib.concatMapStrings (l: "    ${l}\n") lines + "  }\n";

  rpfilter = lib.optionalString (cfg.checkReversePath != false) (chain "rpfilter" ([
    "type filter hook prerouting priority mangle + 10; policy drop;"
    # A DHCP client has no address (and so no route back) until the server's answer arrives.
    "meta nfproto ipv4 udp sport . udp dport { 67 . 68, 68 . 67 } accept comment \"DHCPv4 client/server\""
    "fib saddr . mark${lib.optionalString (cfg.checkReversePath != "loose") " . iif"} oif exists accept"
  ] ++ lib.optional cfg.logReversePathDrops "log level info prefix \"rpfilter drop: \""));

  input = chain "input" ([
    "type filter hook input priority filter; policy drop;"
    "iifname { ${lib.concatMapStringsSep ", " quote trusted} } accept comment \"trusted interfaces\""
    # Neighbour discovery and other ICMPv6 is untracked, so untracked packets get the same chance as new ones.
    "ct state vmap { invalid : drop, established : accept, related : accept, new : jump input-allow, untracked : jump input-allow }"
  ] ++ lib.optional cfg.logRefusedConnections
    "tcp flags syn / fin,syn,rst,ack limit rate 1/second burst 10 packets log level info prefix \"refused connection: \""
  ++ lib.optionals (cfg.logRefusedPackets && !cfg.logRefusedUnicastsOnly) [
    "pkttype broadcast limit rate 1/second burst 10 packets log level info prefix \"refused broadcast: \""
    "pkttype multicast limit rate 1/second burst 10 packets log level info prefix \"refused multicast: \""
  ] ++ lib.optional cfg.logRefusedPackets
    "pkttype host limit rate 1/second burst 10 packets log level info prefix \"refused packet: \""
  ++ lib.optionals cfg.rejectPackets [
    "meta l4proto tcp reject with tcp reset"
    "reject with icmpx port-unreachable"
  ]);

  inputAllow = chain "input-allow" (
    allowPorts null cfg
    ++ lib.concatLists (lib.mapAttrsToList allowPorts cfg.interfaces)
    ++ lib.optionals cfg.allowPing [
      "icmp type echo-request ${limit}accept comment \"allow ping\""
      "icmpv6 type echo-request ${limit}accept comment \"allow ping\""
    ] ++ [
      # RFC 4890 4.4: a host needs all ICMPv6 but redirects and node information queries (139).
      "icmpv6 type != { nd-redirect, 139, echo-request } accept comment \"ICMPv6 that IPv6 needs\""
      "udp sport 67 udp dport 68 accept comment \"DHCPv4 client\""
      "ip6 daddr fe80::/64 udp dport 546 accept comment \"DHCPv6 client\""
    ] ++ textLines cfg.extraInputRules);

  # Loading is one transaction: the table is made (if absent), deleted and made anew, so a reload replaces
  # the rules atomically and never leaves the machine open in between.
  ruleset = ''
    # networking.firewall, loaded by firewall.service
    table inet ${table}
    delete table inet ${table}
    table inet ${table} {
    ${rpfilter}${input}${inputAllow}}
  '';
  rulesetFile = lib.writeText "firewall.nft" cfg.build.ruleset;
  stopFile = lib.writeText "firewall-stop.nft" "table inet ${table}\ndelete table inet ${table}\n";
  nft = "${cfg.package}/sbin/nft";
in
{
  options.networking.firewall = portOptions // {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether to enable the firewall. This is a simple stateful firewall that blocks connection attempts
        to unauthorised TCP or UDP ports on this machine.
      '';
    };
    package = mkOption {
      type = types.package;
      default = pkgs.nftables;
      defaultText = lib.literalExpression "pkgs.nftables";
      description = "The nftables package the firewall service loads its rules with.";
    };
    interfaces = mkOption {
      type = types.attrsOf (types.submodule { options = portOptions; });
      default = { };
      example = { eth0.allowedTCPPorts = [ 8080 ]; };
      description = "Interface-specific open ports.";
    };
    trustedInterfaces = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "enp0s2" ];
      description = ''
        Traffic coming in from these interfaces will be accepted unconditionally. Traffic from the loopback
        (lo) interface will always be accepted.
      '';
    };
    allowPing = mkOption {
      type = types.bool;
      default = true;
      description = "Whether to respond to incoming ICMP and ICMPv6 echo requests (\"pings\").";
    };
    pingLimit = mkOption {
      type = types.nullOr (types.separatedString " ");
      default = null;
      example = "1/minute burst 5 packets";
      description = ''
        If pings are allowed, this sets a rate limit on them, in nftables syntax such as "2/second" or
        "1/minute burst 5 packets".
      '';
    };
    logRefusedConnections = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether to log rejected or dropped incoming connections (rate limited). The logs are found in the
        kernel log, i.e. dmesg or journalctl -k.
      '';
    };
    logRefusedPackets = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Whether to log all rejected or dropped incoming packets (rate limited). This tends to give a lot of
        log messages, so it is mostly useful for debugging.
      '';
    };
    logRefusedUnicastsOnly = mkOption {
      type = types.bool;
      default = true;
      description = ''
        If networking.firewall.logRefusedPackets and this option are enabled, then only log packets
        specifically directed at this machine, i.e., not broadcasts or multicasts.
      '';
    };
    rejectPackets = mkOption {
      type = types.bool;
      default = false;
      description = ''
        If set, refused packets are rejected rather than dropped (ignored). This means that an ICMP "port
        unreachable" error message is sent back to the client (or a TCP RST packet for TCP). Rejecting
        packets makes port scanning somewhat easier.
      '';
    };
    checkReversePath = mkOption {
      type = types.either types.bool (types.enum [ "strict" "loose" ]);
      default = true;
      example = "loose";
      description = ''
        Performs a reverse path filter test on a packet. If a reply to the packet would not be sent via the
        same interface that the packet arrived on, it is refused. This option can be true (or "strict"),
        "loose" (only drop the packet if the source address is not reachable via any interface) or false.
      '';
    };
    logReversePathDrops = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Logs dropped packets failing the reverse path filter test if the option
        networking.firewall.checkReversePath is enabled.
      '';
    };
    extraInputRules = mkOption {
      type = types.lines;
      default = "";
      example = "ip6 saddr { fc00::/7, fe80::/10 } tcp dport 24800 accept";
      description = "Additional nftables rules to be appended to the input-allow chain.";
    };
    build.ruleset = mkOption {
      type = types.str;
      internal = true;
      readOnly = true;
      description = "The nftables ruleset firewall.service loads.";
    };
  };

  config = lib.mkMerge [
    { networking.firewall.build.ruleset = ruleset; }
    (lib.mkIf cfg.enable {
      assertions = [
        {
          assertion = cfg.pingLimit == null || !(lib.hasPrefix "--" cfg.pingLimit);
          message = "networking.firewall.pingLimit `${toString cfg.pingLimit}' is iptables syntax; give nftables syntax such as \"2/second\" or \"1/minute burst 5 packets\".";
        }
      ] ++ lib.concatLists (lib.mapAttrsToList (where: p: map (r: {
        assertion = r.from <= r.to;
        message = "networking.firewall.${where}: the port range ${toString r.from}-${toString r.to} ends before it starts; give from <= to.";
      }) p) ({
        allowedTCPPortRanges = cfg.allowedTCPPortRanges;
        allowedUDPPortRanges = cfg.allowedUDPPortRanges;
      } // lib.listToAttrs (lib.concatLists (lib.mapAttrsToList (i: ic: [
        (lib.nameValuePair "interfaces.${i}.allowedTCPPortRanges" ic.allowedTCPPortRanges)
        (lib.nameValuePair "interfaces.${i}.allowedUDPPortRanges" ic.allowedUDPPortRanges)
      ]) cfg.interfaces))));

      environment.systemPackages = [ cfg.package ];

      systemd.services.firewall = {
        description = "Firewall";
        # Early, like NixOS's: in sysinit, before the network is configured; nftables' kernel modules load
        # on demand through the modprobe path activation sets.
        wantedBy = [ "sysinit.target" ];
        wants = [ "network-pre.target" ];
        after = [ "systemd-modules-load.service" ];
        before = [ "network-pre.target" "shutdown.target" ];
        unitConfig = { Conflicts = "shutdown.target"; DefaultDependencies = false; };
        # A changed ruleset is loaded into the running firewall, which never goes down in between.
        reloadIfChanged = true;
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${nft} -f ${rulesetFile}";
          ExecReload = "${nft} -f ${rulesetFile}";
          ExecStop = "${nft} -f ${stopFile}";
        };
      };
    })
  ];
}
