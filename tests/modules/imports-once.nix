# expect: [ "x" ]
# A module imported twice (by path) counts once.
let
  lib = import <rixos/lib.nix>;
  shared = ./files/shared.nix;
in
(lib.evalModules {
  modules = [ { options.l = lib.mkOption { type = lib.types.listOf lib.types.str; }; } { imports = [ shared ]; } { imports = [ shared ]; } ];
}).config.l
