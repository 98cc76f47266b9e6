# checkReversePath = "loose" drops only sources reachable through no interface; drops can be logged.
# expect: fib saddr . mark oif exists accept
# expect: log level info prefix "rpfilter drop: "
# expect-not: fib saddr . mark . iif
{ ... }: {
  networking.firewall.checkReversePath = "loose";
  networking.firewall.logReversePathDrops = true;
}
