# rejectPackets: refused TCP gets a reset, anything else an ICMP port unreachable.
# expect: meta l4proto tcp reject with tcp reset
# expect: reject with icmpx port-unreachable
{ ... }: {
  networking.firewall.rejectPackets = true;
}
