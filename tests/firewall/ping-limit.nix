# pingLimit, in nftables syntax, limits both kinds of echo request.
# expect: icmp type echo-request limit rate 1/minute burst 5 packets accept comment "allow ping"
# expect: icmpv6 type echo-request limit rate 1/minute burst 5 packets accept comment "allow ping"
{ ... }: {
  networking.firewall.pingLimit = "1/minute burst 5 packets";
}
