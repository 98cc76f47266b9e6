# Ports sorted and counted once, ranges after them, from several definitions merged.
# expect: tcp dport { 80, 443, 8000-8010 } accept
# expect: udp dport { 53, 60000-61000, 5000-5001 } accept
{ lib, ... }: {
  imports = [ { networking.firewall.allowedTCPPorts = [ 80 ]; } ];
  networking.firewall.allowedTCPPorts = [ 443 80 ];
  networking.firewall.allowedTCPPortRanges = [ { from = 8000; to = 8010; } ];
  networking.firewall.allowedUDPPorts = [ 53 ];
  networking.firewall.allowedUDPPortRanges = [ { from = 60000; to = 61000; } { from = 5000; to = 5001; } ];
}
