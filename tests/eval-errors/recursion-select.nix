# error: infinite recursion encountered
# at: 4:11
# nix: same
let s = { c = s.c; }; in s.c
