# networking.firewall.enable = false: no firewall service at all.
# expect: (no firewall.service)
{ ... }: {
  networking.firewall.enable = false;
  networking.firewall.allowedTCPPorts = [ 80 ];
}
