# expect-error: The option `v' is read-only, but it's set multiple times.
let lib = import <rixos/lib.nix>; in
(lib.evalModules {
  modules = [ { options.v = lib.mkOption { type = lib.types.int; readOnly = true; }; } { v = 1; } { v = 1; } ];
}).config.v
