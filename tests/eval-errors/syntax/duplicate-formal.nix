# error: duplicate formal function argument 'a'
# at: 5:5
# nix: same
# The snippet below: what Nix 2.8 prints for it is above.
{a, a}: a
