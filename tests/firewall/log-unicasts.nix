# logRefusedPackets alone logs only packets addressed to this machine.
# expect: pkttype host limit rate 1/second burst 10 packets log level info prefix "refused packet: "
# expect-not: pkttype broadcast
# expect-not: pkttype multicast
{ ... }: {
  networking.firewall.logRefusedPackets = true;
}
