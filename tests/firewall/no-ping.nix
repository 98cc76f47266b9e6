# allowPing = false: echo requests are refused (ICMP and ICMPv6), the rest of ICMPv6 still accepted.
# expect: icmpv6 type != { nd-redirect, 139, echo-request } accept comment "ICMPv6 that IPv6 needs"
# expect-not: icmp type echo-request
# expect-not: icmpv6 type echo-request
{ ... }: {
  networking.firewall.allowPing = false;
}
