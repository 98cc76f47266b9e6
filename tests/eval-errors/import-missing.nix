# error: getting status of '@DIR@/missing.nix': No such file or directory
# at: 5:7
# nix: message (Nix 2.8 gives no position)
let
  x = import ./missing.nix;
in x
