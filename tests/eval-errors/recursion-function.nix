# error: infinite recursion encountered
# at: 5:10
# nix: same
let
  f = x: y;
  y = f 1;
in
  y + 1
