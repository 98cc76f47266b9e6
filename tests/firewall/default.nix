# Nothing configured: inbound dropped but for loopback, replies, the ICMP IPv6 needs, DHCP and pings;
# refused connections logged; strict reverse path filtering; no port open.
# expect: type filter hook input priority filter; policy drop;
# expect: iifname { "lo" } accept comment "trusted interfaces"
# expect: ct state vmap { invalid : drop, established : accept, related : accept, new : jump input-allow, untracked : jump input-allow }
# expect: tcp flags syn / fin,syn,rst,ack limit rate 1/second burst 10 packets log level info prefix "refused connection: "
# expect: icmp type echo-request accept comment "allow ping"
# expect: icmpv6 type echo-request accept comment "allow ping"
# expect: icmpv6 type != { nd-redirect, 139, echo-request } accept comment "ICMPv6 that IPv6 needs"
# expect: udp sport 67 udp dport 68 accept comment "DHCPv4 client"
# expect: ip6 daddr fe80::/64 udp dport 546 accept comment "DHCPv6 client"
# expect: type filter hook prerouting priority mangle + 10; policy drop;
# expect: fib saddr . mark . iif oif exists accept
# expect-not: tcp dport
# expect-not: udp dport
# expect-not: reject
# expect-not: meta l4proto tcp reject
# expect-not: pkttype
# expect-not: log level info prefix "rpfilter drop: "
{ ... }: { }
