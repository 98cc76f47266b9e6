# extraInputRules: each line lands in the input-allow chain.
# expect: ip saddr 10.0.0.0/8 tcp dport 9000 accept
# expect: ip6 saddr { fc00::/7, fe80::/10 } tcp dport 24800 accept
{ ... }: {
  networking.firewall.extraInputRules = ''
    ip saddr 10.0.0.0/8 tcp dport 9000 accept
    ip6 saddr { fc00::/7, fe80::/10 } tcp dport 24800 accept
  '';
}
