# logRefusedPackets with logRefusedUnicastsOnly = false logs broadcasts and multicasts too; refused
# connections are not logged when logRefusedConnections is off.
# expect: pkttype broadcast limit rate 1/second burst 10 packets log level info prefix "refused broadcast: "
# expect: pkttype multicast limit rate 1/second burst 10 packets log level info prefix "refused multicast: "
# expect: pkttype host limit rate 1/second burst 10 packets log level info prefix "refused packet: "
# expect-not: tcp flags syn
{ ... }: {
  networking.firewall.logRefusedConnections = false;
  networking.firewall.logRefusedPackets = true;
  networking.firewall.logRefusedUnicastsOnly = false;
}
