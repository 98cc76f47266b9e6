# expect-error: The option `x' has conflicting definition values:
# expect-error: conflict.nix:7': "a"
# expect-error: conflict.nix:8': "b"
let lib = import <rixos/lib.nix>; in
(lib.evalModules {
  modules = [ { options.x = lib.mkOption { type = lib.types.str; }; }
    { x = "a"; }
    { x = "b"; }
  ];
}).config.x
