# error: infinite recursion encountered
# at: 4:9
# nix: same
let x = x; in x
