# error: infinite recursion encountered
# at: 4:11
# nix: same
rec { a = b; b = a; }.a
