# checkReversePath = false: no reverse path chain.
# expect-not: chain rpfilter
# expect-not: fib saddr
{ ... }: {
  networking.firewall.checkReversePath = false;
}
