# Ports opened on one interface only.
# expect: iifname "eth1" tcp dport { 8080 } accept
# expect: iifname "eth1" udp dport { 4000-4010 } accept
# expect: iifname "wg0" udp dport { 51820 } accept
# expect-not: udp dport
# expect-not: tcp dport
{ ... }: {
  networking.firewall.interfaces.eth1 = {
    allowedTCPPorts = [ 8080 ];
    allowedUDPPortRanges = [ { from = 4000; to = 4010; } ];
  };
  networking.firewall.interfaces.wg0.allowedUDPPorts = [ 51820 ];
}
