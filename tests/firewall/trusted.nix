# Trusted interfaces are accepted whole; loopback always is, once.
# expect: iifname { "lo", "wg0", "br0" } accept comment "trusted interfaces"
{ ... }: {
  networking.firewall.trustedInterfaces = [ "wg0" "lo" "br0" ];
}
