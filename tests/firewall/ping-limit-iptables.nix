# An iptables-style pingLimit is refused, saying what to write instead.
# expect-error: networking.firewall.pingLimit `--limit 1/minute' is iptables syntax
# expect-error: "2/second"
{ ... }: {
  networking.firewall.pingLimit = "--limit 1/minute";
}
