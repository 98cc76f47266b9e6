# A port range that ends before it starts is refused, naming the option.
# expect-error: networking.firewall.interfaces.eth0.allowedTCPPortRanges: the port range 9000-8000 ends before it starts
{ ... }: {
  networking.firewall.interfaces.eth0.allowedTCPPortRanges = [ { from = 9000; to = 8000; } ];
}
